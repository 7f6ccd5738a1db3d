//! `ivr chat`: a conversation with the dialogue engine on the terminal.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use ivr_models::ModelDir;

use crate::config::Config;
use crate::load::*;

/// A text conversation over the same dialogue manager a call uses. Lines are the caller's words;
/// `/dtmf 41234567#` presses keys, `/caller +4930111222` sets the calling number (new call),
/// `/quit` ends.
pub(crate) fn chat(models: &ModelDir, cfg: &Config, caller: Option<String>, llm: bool, json: bool) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let mut engine = load_engine(models, cfg)?;
    let llm = if llm { Some(start_llm(models, cfg)?) } else { None };
    let mut caller = caller;
    let mut conversation = dialogue::manager::Conversation::new(caller.as_deref());
    eprintln!("ivr chat: type what a caller says; /dtmf DIGITS to key, /caller NUMBER for a new call, /quit to stop");
    let stdin = std::io::stdin();
    // Bytes, not strings: a line that is not UTF-8 is read with replacement characters, not refused.
    for line in stdin.lock().split(b'\n') {
        let line = match line {
            Ok(l) => String::from_utf8_lossy(&l).into_owned(),
            Err(e) => bail!("cannot read standard input: {e}"),
        };
        let line = line.trim();
        if line == "/quit" {
            break;
        }
        if let Err(e) = engine.reload_if_changed() {
            eprintln!("ivr: knowledge not reloaded: {e}");
        }
        let started = Instant::now();
        if let Some(number) = line.strip_prefix("/caller") {
            caller = Some(number.trim().to_string()).filter(|n| !n.is_empty());
            conversation = dialogue::manager::Conversation::new(caller.as_deref());
            eprintln!("     new call from {}", caller.as_deref().unwrap_or("an unknown number"));
            continue;
        }
        let turns: Vec<_> = if let Some(keys) = line.strip_prefix("/dtmf") {
            keys.trim().chars().map(|k| conversation.handle(dialogue::manager::Input::Dtmf(k), jiff_now(), &engine.brain())).collect()
        } else {
            vec![conversation.handle(dialogue::manager::Input::Speech { text: line, language: "" }, jiff_now(), &engine.brain())]
        };
        let turns: Vec<_> = turns.into_iter().map(|t| improve_with_llm(t, llm.as_ref().map(|l| &l.client))).collect();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        for turn in turns.iter().filter(|t| !t.reply.is_empty() || t.action.is_some()) {
            print_turn(turn, ms, json);
        }
        if conversation.is_ended() {
            eprintln!("     (call ended; /caller to start a new one)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
