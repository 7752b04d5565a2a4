//! Swarm node firmware for the ESP32-C3.
//!
//! A thin adapter: this crate wires the radio, the broker connection and the
//! sensors together; `swarm-fw-core` holds every decision and is tested on the
//! host.

#![no_std]
#![no_main]

extern crate alloc;

mod battery;
mod node;
mod ota;
mod power;
mod settings;
mod watchdog;
mod wifi;

use embassy_executor::Spawner;
use esp_backtrace as _;
use esp_hal::{
    clock::CpuClock,
    ram,
    rtc_cntl::{reset_reason, wakeup_cause},
    system::Cpu,
    timer::timg::TimerGroup,
};
use esp_println::println;

/// The energy meter's totals; RTC fast memory keeps them through deep sleep, and the core's
/// checksum tells a power-on's noise from them.
#[ram(unstable(rtc_fast, persistent))]
static mut METER_WORDS: [u64; 4] = [0; 4];

/// The gateway's time carried across deep sleep (`swarm_fw_core::time::Carried`), checked the
/// same way; written just before a deep sleep and cleared once read.
#[ram(unstable(rtc_fast, persistent))]
static mut TIME_WORDS: [u64; 2] = [0; 2];

/// Energy readings the broker has not acknowledged (`swarm_fw_core::backlog`), kept through
/// deep sleep the same way: 2 KiB.
/// What an update carries across its reset (`ota::Carried`): the image coming on trial, the
/// running one's SHA-256, or a rollback to report.
#[ram(unstable(rtc_fast, persistent))]
static mut OTA_WORDS: [u64; 6] = [0; 6];

#[ram(unstable(rtc_fast, persistent))]
static mut BACKLOG_WORDS: [u64; swarm_fw_core::backlog::WORDS] = [0; swarm_fw_core::backlog::WORDS];

// The ESP-IDF second-stage bootloader refuses images without this descriptor.
esp_bootloader_esp_idf::esp_app_desc!();

#[esp_hal::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    // The Wi-Fi driver allocates its buffers on the heap. The first region
    // reuses RAM the bootloader no longer needs, so it costs no static RAM.
    esp_alloc::heap_allocator!(#[ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);

    println!(
        "swarm node {} (swarm {}), reset: {:?}, wake-up: {:?}",
        settings::NODE_ID,
        settings::SWARM,
        reset_reason(Cpu::ProCpu),
        wakeup_cause()
    );

    // esp-radio needs the scheduler running before the Wi-Fi driver starts.
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    let battery = battery::Battery::new(peripherals.ADC1, peripherals.GPIO3);
    let power = power::Power::new(peripherals.LPWR);
    let stack = wifi::start(spawner, peripherals.WIFI);

    // SAFETY: the only references to these statics, taken once, before any task could race
    // them.
    let kept = node::Kept {
        meter: unsafe { &mut *core::ptr::addr_of_mut!(METER_WORDS) },
        time: unsafe { &mut *core::ptr::addr_of_mut!(TIME_WORDS) },
        backlog: unsafe { &mut *core::ptr::addr_of_mut!(BACKLOG_WORDS) },
        ota: unsafe { &mut *core::ptr::addr_of_mut!(OTA_WORDS) },
    };
    let flash = ota::Flash::new(esp_bootloader_esp_idf::partitions::FlashStorage::new(
        peripherals.FLASH,
    ));
    let watchdog = watchdog::TrialWatchdog::new(peripherals.RTC_TIMER);
    node::run(stack, battery, power, flash, watchdog, kept).await
}
