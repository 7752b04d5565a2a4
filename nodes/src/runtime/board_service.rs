//! The board's pins at run time: `identify` blinks the LED, and watched inputs (power-good,
//! button) are logged when they change and shown in the metrics.

use super::abort::AbortOnDrop;
use crate::board::blink::{self, Blink};
use crate::board::gpio::{self, Polarity};
use crate::board::settings::BoardSettings;
use crate::board::watch_input::{Debounce, POLL};
use anyhow::Context;
use embedded_hal::digital::InputPin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest identify a command may ask for.
const MAX_IDENTIFY: Duration = Duration::from_secs(600);

/// Each watched input's name and its debounced level (true = active), once known.
pub type InputLevels = Arc<Mutex<Vec<(&'static str, Option<bool>)>>>;

pub struct BoardService {
    led: Option<Arc<tokio::sync::Mutex<Polarity<gpio::Output>>>>,
    blinking: Option<AbortOnDrop>,
    pub inputs: InputLevels,
    _watching: Vec<AbortOnDrop>,
}

impl BoardService {
    /// Opens every configured pin; a pin that cannot be opened is an error at start, not a
    /// silent no-op later.
    pub fn start(settings: &BoardSettings) -> anyhow::Result<BoardService> {
        let led = match settings.led_pin {
            Some(pin) => {
                let out = gpio::output(pin).with_context(|| format!("board.led_pin = {pin}"))?;
                let led = Polarity {
                    pin: out,
                    active_low: settings.led_active_low,
                };
                Some(Arc::new(tokio::sync::Mutex::new(led)))
            }
            None => None,
        };
        let inputs: InputLevels = Arc::new(Mutex::new(Vec::new()));
        let mut watching = Vec::new();
        for (name, pin, active_low) in settings.inputs() {
            let input = gpio::input(pin, active_low)
                .with_context(|| format!("board.{name}_pin = {pin}"))?;
            let slot = {
                let mut levels = inputs.lock().unwrap_or_else(|p| p.into_inner());
                levels.push((name, None));
                levels.len() - 1
            };
            let task = tokio::spawn(watch(name, input, active_low, inputs.clone(), slot));
            watching.push(AbortOnDrop(task));
        }
        Ok(BoardService {
            led,
            blinking: None,
            inputs,
            _watching: watching,
        })
    }

    /// Blinks the LED for `seconds` (a new request restarts the pattern); without an LED the
    /// request is logged, so it still shows which node heard it.
    pub fn identify(&mut self, seconds: u32) {
        let length = Duration::from_secs(u64::from(seconds)).min(MAX_IDENTIFY);
        let Some(led) = &self.led else {
            tracing::warn!(
                seconds = length.as_secs(),
                "identify: this node has no board.led_pin; nothing to blink"
            );
            return;
        };
        tracing::info!(seconds = length.as_secs(), "identify: blinking the LED");
        let led = led.clone();
        let pattern = Blink {
            period: Blink::DEFAULT_PERIOD,
            length,
        };
        self.blinking = Some(AbortOnDrop(tokio::spawn(async move {
            let mut led = led.lock().await;
            let _ = blink::run(pattern, &mut *led, tokio::time::sleep).await;
        })));
    }
}

async fn watch<P: InputPin>(
    name: &'static str,
    mut pin: P,
    active_low: bool,
    levels: InputLevels,
    slot: usize,
) {
    let mut debounce = Debounce::default();
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        let Ok(high) = pin.is_high() else { continue };
        let active = high != active_low;
        if let Some(level) = debounce.sample(active, Instant::now()) {
            tracing::info!(input = name, active = level, "board input changed");
            if let Some(entry) = levels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(slot)
            {
                entry.1 = Some(level);
            }
        }
    }
}
