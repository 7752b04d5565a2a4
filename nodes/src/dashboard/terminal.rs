//! The terminal while a dashboard is on screen: raw mode and the alternate screen, given back
//! however the dashboard ends (return, error, or panic through ratatui's hook), and the keys,
//! read on a thread of their own because crossterm's reads block.

use anyhow::Context;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::{DefaultTerminal, Frame};
use std::io::IsTerminal;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Screen {
    terminal: DefaultTerminal,
}

/// Refuses early, before any session is opened, when there is no terminal to draw on.
pub fn ensure_terminal() -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the dashboard draws on a terminal and stdout is not one; \
             `swarm-node status` and `swarm-node energy` print text"
        );
    }
    Ok(())
}

impl Screen {
    pub fn enter() -> anyhow::Result<Screen> {
        ensure_terminal()?;
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                // Raw mode may be on already when the alternate screen failed.
                ratatui::restore();
                Err(e).context("setting up the terminal")
            }
        }
    }

    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> anyhow::Result<()> {
        self.terminal
            .draw(render)
            .context("drawing on the terminal")?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// The terminal was resized.
    Redraw,
}

/// How long a key read waits before checking whether the dashboard is still there.
const POLL: Duration = Duration::from_millis(200);

/// Keys as they are pressed; the thread ends soon after the receiver is dropped.
pub fn keys() -> anyhow::Result<mpsc::Receiver<Key>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::Builder::new()
        .name("dashboard-keys".into())
        .spawn(move || {
            while !tx.is_closed() {
                let key = match event::poll(POLL) {
                    Ok(false) => continue,
                    Ok(true) => match event::read() {
                        Ok(Event::Key(k)) => key_of(k),
                        Ok(Event::Resize(..)) => Some(Key::Redraw),
                        Ok(_) => None,
                        Err(_) => Some(Key::Quit),
                    },
                    // No terminal to read from any more: nobody is watching.
                    Err(_) => Some(Key::Quit),
                };
                if let Some(k) = key
                    && (tx.blocking_send(k).is_err() || k == Key::Quit)
                {
                    return;
                }
            }
        })
        .context("starting the key reader")?;
    Ok(rx)
}

fn key_of(k: KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    // Raw mode turns Ctrl-C into a key instead of SIGINT.
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(k.code, KeyCode::Char('c' | 'C')).then_some(Key::Quit);
    }
    Some(match k.code {
        KeyCode::Char('q' | 'Q') | KeyCode::Esc => Key::Quit,
        KeyCode::Up | KeyCode::Char('k') => Key::Up,
        KeyCode::Down | KeyCode::Char('j') => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown | KeyCode::Char(' ') => Key::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Key::Home,
        KeyCode::End | KeyCode::Char('G') => Key::End,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_quit() {
        let quit = |code, modifiers| key_of(KeyEvent::new(code, modifiers));
        assert_eq!(
            quit(KeyCode::Char('q'), KeyModifiers::NONE),
            Some(Key::Quit)
        );
        assert_eq!(quit(KeyCode::Esc, KeyModifiers::NONE), Some(Key::Quit));
        assert_eq!(
            quit(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Key::Quit)
        );
        assert_eq!(quit(KeyCode::Char('c'), KeyModifiers::NONE), None);
        assert_eq!(quit(KeyCode::Down, KeyModifiers::NONE), Some(Key::Down));
    }
}
