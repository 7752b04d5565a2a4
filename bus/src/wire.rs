//! How a message looks on the wire, in one place.
//!
//! Compact form (CBOR, `is_human_readable() == false`): an array
//! `[version, tag, field1, field2, ...]`; enums are small integers. Arrays instead of maps keep
//! a heartbeat near 20 bytes; a newer sender may append fields, which older readers skip.
//! Fields after a `;` are an optional tail: each an `Option`, left off the end of the array
//! while `None`, so a message pays for them only when it has something to say, and a reader
//! takes a message without them as `None`.
//! Human form (JSON): an object with the full field names and enum names, for `zenoh get`,
//! `--json` output and JSON-speaking devices.

/// The wire version every message starts with. A reader rejects any other value.
pub const VERSION: u8 = 1;

/// A message type that travels on the bus.
pub trait WireMessage: serde::Serialize + serde::de::DeserializeOwned {
    /// Second element of the compact array; tells message types apart on a shared key.
    const TAG: u8;
    const NAME: &'static str;
}

/// Declares a message struct with its compact (array) and human (object) serde forms.
macro_rules! wire_message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $tag:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
            $( ; $( $(#[$tmeta:meta])* pub $tfield:ident : Option<$tty:ty> ),* $(,)? )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $( $(#[$tmeta])* pub $tfield: Option<$tty>, )* )?
        }

        impl $crate::wire::WireMessage for $name {
            const TAG: u8 = $tag;
            const NAME: &'static str = stringify!($name);
        }

        const _: () = {
            use serde::de::{Error as _, IgnoredAny, SeqAccess, Visitor};
            use serde::ser::SerializeTuple;

            #[allow(clippy::ref_option_ref, dead_code)]
            fn absent<T>(v: &&Option<T>) -> bool {
                v.is_none()
            }

            #[derive(serde::Serialize)]
            struct Human<'a> {
                $( $field: &'a $ty, )*
                $( $( #[serde(skip_serializing_if = "absent")] $tfield: &'a Option<$tty>, )* )?
            }

            #[derive(serde::Deserialize)]
            struct HumanOwned {
                $( $field: $ty, )*
                $( $( #[serde(default)] $tfield: Option<$tty>, )* )?
            }

            const FIELDS: usize = [$( stringify!($field) ),*].len();

            impl serde::Serialize for $name {
                #[allow(unused_mut, unused_variables, unused_assignments)]
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    if s.is_human_readable() {
                        let h = Human {
                            $( $field: &self.$field, )*
                            $( $( $tfield: &self.$tfield, )* )?
                        };
                        return serde::Serialize::serialize(&h, s);
                    }
                    // The tail runs up to its last present field.
                    let (mut tail, mut i) = (0usize, 0usize);
                    $( $( i += 1; if self.$tfield.is_some() { tail = i; } )* )?
                    let mut t = s.serialize_tuple(FIELDS + 2 + tail)?;
                    t.serialize_element(&$crate::wire::VERSION)?;
                    t.serialize_element(&($tag as u8))?;
                    $( t.serialize_element(&self.$field)?; )*
                    let mut j = 0usize;
                    $( $(
                        j += 1;
                        if j <= tail {
                            t.serialize_element(&self.$tfield)?;
                        }
                    )* )?
                    t.end()
                }
            }

            struct Compact;

            impl<'de> Visitor<'de> for Compact {
                type Value = $name;

                fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    write!(f, "a {} array [version, tag, {} fields]", stringify!($name), FIELDS)
                }

                #[allow(unused_assignments, unused_mut, unused_variables)]
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<$name, A::Error> {
                    let version: u8 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                    if version != $crate::wire::VERSION {
                        return Err(A::Error::custom("unknown message version"));
                    }
                    let tag: u8 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                    if tag != $tag {
                        return Err(A::Error::custom("wrong message tag"));
                    }
                    let mut index = 2;
                    $(
                        let $field: $ty = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(index, &self))?;
                        index += 1;
                    )*
                    $( $(
                        let $tfield: Option<$tty> = seq.next_element::<Option<$tty>>()?.flatten();
                    )* )?
                    // Fields a newer sender appended: skipped, so old readers keep working.
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok($name { $( $field, )* $( $( $tfield, )* )? })
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    if d.is_human_readable() {
                        let h = HumanOwned::deserialize(d)?;
                        return Ok($name {
                            $( $field: h.$field, )*
                            $( $( $tfield: h.$tfield, )* )?
                        });
                    }
                    d.deserialize_seq(Compact)
                }
            }
        };
    };
}

/// Declares a field-less enum: a small integer on the wire, a lowercase name for humans.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $num:literal => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant = $num ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$( $name::$variant ),+];
            /// The allowed names, for error messages.
            pub const NAMES: &'static str = concat!($( $text, " " ),+);

            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text ),+ }
            }

            pub fn from_u8(n: u8) -> Option<Self> {
                match n { $( $num => Some($name::$variant), )+ _ => None }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::messages::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::messages::UnknownVariant { kind: stringify!($name), allowed: Self::NAMES }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(self.as_str())
                } else {
                    s.serialize_u8(*self as u8)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                if d.is_human_readable() {
                    let s = <alloc::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(D::Error::custom)
                } else {
                    let n = u8::deserialize(d)?;
                    $name::from_u8(n).ok_or_else(|| {
                        D::Error::custom(alloc::format!("unknown {} value {}", stringify!($name), n))
                    })
                }
            }
        }
    };
}

/// Declares the fixed words of key expressions.
macro_rules! wire_key_words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $variant ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$( $name::$variant ),+];
            pub const NAMES: &'static str = concat!($( $text, " " ),+);

            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text ),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $text => Some($name::$variant), )+ _ => None }
            }
        }
    };
}
