//! Wi-Fi station bring-up and the network stack (DHCP + DNS via embassy-net).

use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_time::Timer;
use esp_hal::{peripherals::WIFI, rng::Rng};
use esp_println::println;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, CountryInfo, Interface, WifiController,
    sta::StationConfig,
};
use static_cell::StaticCell;

use crate::settings;
use swarm_fw_core::backoff::Backoff;

/// Sockets the stack must hold at once: the MQTT TCP socket, the DNS socket
/// and the DHCP client, plus one spare.
const SOCKETS: usize = 4;

/// Starts Wi-Fi and the network stack and spawns the tasks that keep them
/// running. The returned stack comes up (gets an IPv4 config) asynchronously.
pub fn start(spawner: Spawner, wifi: WIFI<'static>) -> Stack<'static> {
    let station = StationConfig::default()
        .with_ssid(
            settings::WIFI_SSID
                .try_into()
                .expect("SSID checked by build.rs"),
        )
        .with_authentication(authentication());
    let controller = WifiController::new(
        wifi,
        ControllerConfig::default()
            .with_country_info(CountryInfo::from(settings::WIFI_COUNTRY))
            .with_initial_config(Config::Station(station)),
    )
    .expect("Wi-Fi driver init failed");

    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );

    // embassy-executor 0.10: the task constructor returns Result<SpawnToken>;
    // it only fails if the task is already running, which would be a bug here.
    spawner.spawn(link_task(controller).expect("link task spawned twice"));
    spawner.spawn(net_task(runner).expect("net task spawned twice"));
    stack
}

fn authentication() -> AuthenticationMethodConfig {
    if settings::WIFI_PASS.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            settings::WIFI_PASS
                .try_into()
                .expect("password checked by build.rs"),
        )
    }
}

/// Keeps the station associated: connect, wait for the drop, back off, retry.
/// embassy-net notices the link state itself, so DHCP restarts on its own.
#[embassy_executor::task]
async fn link_task(mut controller: WifiController<'static>) {
    let rng = Rng::new();
    let mut backoff = Backoff::new(1_000, 60_000);
    loop {
        println!("wifi: connecting to {:?}", settings::WIFI_SSID);
        match controller.connect_async().await {
            Ok(info) => {
                println!("wifi: connected, channel {}", info.channel);
                backoff.reset();
                let reason = controller.wait_for_disconnect_async().await;
                println!("wifi: disconnected: {:?}", reason);
            }
            Err(e) => println!("wifi: connect failed: {:?}", e),
        }
        Timer::after_millis(u64::from(backoff.next_ms(rng.random()))).await;
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}
