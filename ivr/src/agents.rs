//! `ivr agents add|list|passwd|status|remove`: the people who take calls, in the store that
//! `ivr serve` reads (a running server picks changes up within seconds). Passwords are read from
//! standard input (one line), never from the command line, and kept as argon2id hashes; the
//! agent's phone registers with the same password (SIP digest, for the configured realm).

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use sip_bridge::sip::registrar::PhoneAccount;

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum AgentsCommand {
    /// Adds an agent; the password is read from standard input.
    Add {
        /// Sign-in name (letters, digits, '.', '_', '-').
        name: String,
        /// The name shown on the console (default: the sign-in name).
        #[arg(long)]
        display_name: Option<String>,
        /// Languages and topics, comma-separated: en,zh,orders,returns,billing.
        #[arg(long, default_value = "en")]
        skills: String,
        /// The SIP user the agent's phone registers as (e.g. 2001); none: console only.
        #[arg(long)]
        extension: Option<String>,
        /// agent or supervisor.
        #[arg(long, default_value = "agent")]
        role: String,
    },
    /// Lists the agents.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Sets a new password (read from standard input).
    Passwd { name: String },
    /// Sets an agent's status: available, on_break or signed_out.
    Status {
        name: String,
        #[arg(value_parser = ["available", "on_break", "signed_out"])]
        status: String,
    },
    Remove { name: String },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("password: ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn realm(cfg: &Config) -> String {
    cfg.sip.registrar.clone().unwrap_or_default().realm
}

pub fn run(cfg: &Config, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = ivr_store::Store::open(&cfg.records.url).await?;
        let code = command_on(&store, cfg, command).await;
        store.close().await;
        code
    })
}

async fn command_on(store: &ivr_store::Store, cfg: &Config, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::Add { name, display_name, skills, extension, role } => {
            let password = read_password()?;
            let phone = extension.as_ref().map(|ext| {
                let p = PhoneAccount::from_password(ext, &realm(cfg), &password);
                ivr_store::PhoneSecret { realm: realm(cfg), ha1_md5: p.ha1_md5, ha1_sha256: p.ha1_sha256 }
            });
            let agent = ivr_store::NewAgent {
                display_name: display_name.unwrap_or_else(|| name.clone()),
                name: name.clone(),
                role,
                skills: vec![skills],
                extension,
                password,
                phone,
                created_at: jiff::Timestamp::now().to_string(),
            };
            match store.add_agent(&agent).await? {
                Ok(()) => {
                    println!("agent {name} added");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("ivr agents add: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        AgentsCommand::List { json } => {
            let agents = store.agents().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&agents)?);
            } else {
                println!("{:<16} {:<20} {:<11} {:<10} {:<11} skills", "name", "display name", "role", "extension", "status");
                for a in agents {
                    println!("{:<16} {:<20} {:<11} {:<10} {:<11} {}", a.name, a.display_name, a.role, a.extension.as_deref().unwrap_or("-"), a.status, a.skills.join(","));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AgentsCommand::Passwd { name } => {
            let Some(agent) = store.agent(&name).await? else {
                eprintln!("ivr agents passwd: no agent {name:?}");
                return Ok(ExitCode::from(2));
            };
            let password = read_password()?;
            let phone = agent.extension.as_ref().map(|ext| {
                let p = PhoneAccount::from_password(ext, &realm(cfg), &password);
                ivr_store::PhoneSecret { realm: realm(cfg), ha1_md5: p.ha1_md5, ha1_sha256: p.ha1_sha256 }
            });
            match store.set_password(&name, &password, phone.as_ref()).await? {
                Ok(_) => {
                    println!("password of {name} changed");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("ivr agents passwd: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        AgentsCommand::Status { name, status } => {
            if store.set_agent_status(&name, &status).await? {
                println!("{name} is {status}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("ivr agents status: no agent {name:?}");
                Ok(ExitCode::from(2))
            }
        }
        AgentsCommand::Remove { name } => {
            if store.remove_agent(&name).await? {
                println!("agent {name} removed");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("ivr agents remove: no agent {name:?}");
                Ok(ExitCode::from(2))
            }
        }
    }
}
