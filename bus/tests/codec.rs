//! The codec round-trips every message and refuses bad bytes with a typed reason, never a panic.

use proptest::prelude::*;
use swarm_bus::codec::peek_header;
use swarm_bus::*;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        term: 7,
        role: Role::Leader,
        leader: Some(id("pi-gw-01")),
        seq: 1234,
        cadence_ms: 500,
        class: DeviceClass::Full,
        voters: None,
        at_ms: None,
    }
}

#[test]
fn round_trips_in_both_forms() {
    let hb = heartbeat();
    assert_eq!(decode::<Heartbeat>(&encode(&hb)).unwrap(), hb);
    let json = serde_json::to_string(&hb).unwrap();
    assert!(json.contains("\"role\":\"leader\""), "{json}");
    assert_eq!(serde_json::from_str::<Heartbeat>(&json).unwrap(), hb);
}

#[test]
fn typed_errors() {
    let bytes = encode(&heartbeat());
    assert_eq!(decode::<Heartbeat>(&[]), Err(DecodeError::Truncated));
    for cut in 1..bytes.len() {
        let err = decode::<Heartbeat>(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated | DecodeError::Malformed { .. }),
            "cut at {cut}: {err:?}"
        );
    }
    let mut v2 = bytes.clone();
    v2[1] = 2;
    assert_eq!(
        decode::<Heartbeat>(&v2),
        Err(DecodeError::UnknownVersion { found: 2 })
    );
    let err = decode::<Energy>(&bytes).unwrap_err();
    assert_eq!(err.kind(), "wrong_type");
    assert!(err.to_string().contains("Energy"), "{err}");
    // A short non-array item is the wrong type, not a truncated message.
    assert_eq!(
        decode::<Heartbeat>(&[0x7b]).unwrap_err().kind(),
        "wrong_type"
    );
    // A JSON text sent where CBOR belongs.
    assert_eq!(
        decode::<Heartbeat>(b"{\"term\":1}").unwrap_err().kind(),
        "wrong_type"
    );
    // A field of the wrong type: role as a string.
    let mut wrong_field = bytes.clone();
    wrong_field[3] = 0x61;
    assert!(decode::<Heartbeat>(&wrong_field).is_err());
}

#[test]
fn appended_fields_from_a_newer_sender_are_ignored() {
    let mut bytes = encode(&Leave { term: 3 });
    assert_eq!(bytes[0], 0x83);
    bytes[0] = 0x85;
    bytes.extend([0x01, 0x63, b'n', b'e', b'w']);
    assert_eq!(decode::<Leave>(&bytes).unwrap(), Leave { term: 3 });
}

#[test]
fn an_optional_tail_costs_nothing_when_absent_and_decodes_from_older_senders() {
    let follower = heartbeat();
    assert_eq!(follower.voters, None);
    let without = encode(&follower);
    let leader = Heartbeat {
        voters: Some(1000),
        ..follower.clone()
    };
    let with = encode(&leader);
    // One more array element: 0x19 0x03 0xe8 (1000).
    assert_eq!(with.len(), without.len() + 3);
    assert_eq!(with[0], without[0] + 1);
    assert_eq!(decode::<Heartbeat>(&with).unwrap(), leader);
    // A sender that never heard of the tail: the field reads as absent.
    assert_eq!(decode::<Heartbeat>(&without).unwrap(), follower);
    // Null in the tail is absent too, and JSON without the field is accepted.
    let mut null = without.clone();
    null[0] += 1;
    null.push(0xf6);
    assert_eq!(decode::<Heartbeat>(&null).unwrap().voters, None);
    let json = serde_json::to_value(&leader).unwrap();
    assert_eq!(json["voters"], 1000);
    let mut old = serde_json::to_value(&follower).unwrap();
    assert!(old.get("voters").is_none(), "{old}");
    old["term"] = 7.into();
    let back: Heartbeat = serde_json::from_value(old).unwrap();
    assert_eq!((back.term, back.voters), (7, None));
}

#[test]
fn invalid_ids_inside_messages_are_refused() {
    let mut hb = encode(&heartbeat());
    let pos = hb.windows(3).position(|w| w == b"pi-").unwrap();
    hb[pos] = b'P';
    assert!(matches!(
        decode::<Heartbeat>(&hb),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn votes_sharing_a_key_decode_by_tag() {
    let req = VoteRequest {
        term: 4,
        pre_vote: true,
        class: DeviceClass::Standard,
        voters: 3,
    };
    let reply = VoteReply {
        term: 4,
        candidate: id("a"),
        granted: false,
        pre_vote: true,
    };
    assert_eq!(Vote::decode_from(&encode(&req)), Ok(Vote::Request(req)));
    assert_eq!(Vote::decode_from(&encode(&reply)), Ok(Vote::Reply(reply)));
    let err = Vote::decode_from(&encode(&heartbeat())).unwrap_err();
    assert_eq!(err.kind(), "wrong_type");
    assert_eq!(Vote::decode_from(&[]).unwrap_err().kind(), "truncated");
}

#[test]
fn header_peek_reads_version_and_tag() {
    let h = peek_header(&encode(&Command {
        op: CommandOp::Identify,
        arg: 5,
    }))
    .unwrap();
    assert_eq!((h.version, h.tag), (1, 7));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = decode::<Heartbeat>(&bytes);
        let _ = decode::<Energy>(&bytes);
        let _ = decode::<NodeState>(&bytes);
        let _ = decode::<LeaderInfo>(&bytes);
        let _ = decode::<Command>(&bytes);
        let _ = decode::<FirmwareOffer>(&bytes);
        let _ = decode::<FirmwareChunk>(&bytes);
        let _ = decode::<FirmwareReport>(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_messages(pos in 0usize..64, byte in any::<u8>(), cut in 0usize..64) {
        let mut bytes = encode(&heartbeat());
        let n = bytes.len();
        bytes[pos % n] = byte;
        bytes.truncate(cut.max(1));
        let _ = decode::<Heartbeat>(&bytes);
    }
}
