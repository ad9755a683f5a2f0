//! The REPL's `:` commands.

use std::process::ExitCode;
use tessera_display::Report;
use tessera_session::{Credential, MasterEndpoint, MasterUrl, Session, join_cells, split_cells};

/// The REPL's own commands and evcxr's that it lists: usage and what each does. `:help` prints
/// them, Tab completes their names.
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "this help"),
    (":quit", "leave (also Ctrl-D)"),
    (
        ":storage",
        "cached RDDs: partitions, memory, executors and their hosts",
    ),
    (":jobs", "jobs of this session"),
    (":executors", "this session's executors"),
    (
        ":cluster",
        "the cluster's agents, frameworks and offers (with a master)",
    ),
    (
        ":save FILE",
        "write this session's cells to FILE (cells separated by `// %%`)",
    ),
    (":load FILE", "run the cells of FILE"),
    (":vars", "variables and their types"),
    (
        ":expand CODE",
        "show CODE as compiled: how its closures capture variables",
    ),
    (":dep NAME = SPEC", "add a crate dependency (evcxr)"),
];

/// The text of `:help`: Tessera's commands first.
pub fn help() -> String {
    let mut text = String::from(
        "Tessera — Rust cells on a cluster. `sc` is your Context: sc.parallelize(vec, n), \
         sc.text_file(path, n).\nA `move` closure sends what it captures to the executors: \
         `let k = 3; nums.filter(move |x| x % k == 0)`.\n\n",
    );
    for (usage, what) in COMMANDS {
        text += &format!("  {usage:<18} {what}\n");
    }
    text += "\nCtrl-C while a job runs cancels the job; the session and its variables stay.";
    text
}

/// Tab completion of a command name: where the name starts in `line` and the names that begin
/// with what is typed up to `position`, if the line is a command being named.
pub fn complete_command(line: &str, position: usize) -> Option<(usize, Vec<String>)> {
    let typed = line.get(..position)?;
    let start = typed.len() - typed.trim_start().len();
    let word = &typed[start..];
    if !word.starts_with(':') || word.contains(char::is_whitespace) {
        return None;
    }
    let names = COMMANDS
        .iter()
        .filter_map(|(usage, _)| usage.split_whitespace().next())
        .filter(|name| name.starts_with(word))
        .map(String::from)
        .collect();
    Some((start, names))
}

/// What the REPL should do after a command that needs no session.
pub enum Next {
    /// The command was handled; read the next line.
    Continue,
    Quit,
}

/// Runs `:help` or `:quit`, which work while the session is still starting.
pub fn run_without_session(line: &str) -> Option<Next> {
    match line.split_whitespace().next().unwrap_or("") {
        ":help" => {
            println!("{}", help());
            Some(Next::Continue)
        }
        ":quit" | ":q" | ":exit" => Some(Next::Quit),
        _ => None,
    }
}

/// Runs a `:` command that Tessera handles itself; returns false if it is evcxr's.
pub fn run(session: &mut Session, line: &str) -> bool {
    let mut words = line.trim().splitn(2, char::is_whitespace);
    let command = words.next().unwrap_or("");
    let argument = words.next().unwrap_or("").trim();
    if let Some(report) = Report::from_command(command) {
        match report.tables(session.driver()) {
            Ok(tables) => {
                for table in tables {
                    println!("{}", table.text());
                }
            }
            Err(e) => eprintln!("{e}"),
        }
        return true;
    }
    match command {
        ":save" if !argument.is_empty() => {
            match std::fs::write(argument, join_cells(session.history())) {
                Ok(()) => println!("Saved {} cells to {argument}.", session.history().len()),
                Err(e) => eprintln!("cannot write {argument}: {e}"),
            }
        }
        ":load" if !argument.is_empty() => match std::fs::read_to_string(argument) {
            Ok(script) => {
                for cell in split_cells(&script) {
                    if !crate::output::execute(session, &cell.code) {
                        eprintln!(
                            "stopped at the cell on line {} of {argument}",
                            cell.first_line
                        );
                        break;
                    }
                }
            }
            Err(e) => eprintln!("cannot read {argument}: {e}"),
        },
        ":save" | ":load" => eprintln!("usage: {command} FILE"),
        ":expand" => match tessera_session::expand_request(line) {
            Some(code) if !code.is_empty() => println!("{}", session.expand(code)),
            _ => eprintln!("usage: :expand CODE"),
        },
        _ => return false,
    }
    true
}

/// The running master and credentials a `tessera cluster CMD` needs.
fn cluster_endpoint(
    cmd: &str,
    master: &MasterUrl,
    credentials: Option<&std::path::Path>,
) -> anyhow::Result<MasterEndpoint> {
    let MasterUrl::Tessera { address } = master else {
        anyhow::bail!(
            "`tessera cluster {cmd}` needs a running master: pass --master tessera://HOST:PORT \
             (or zk://HOST:PORT,.../PATH for masters that elect a leader through ZooKeeper)"
        );
    };
    let Some(credentials) = credentials else {
        anyhow::bail!(
            "`tessera cluster {cmd}` needs credentials of the cluster: pass --credentials DIR \
             (e.g. DIR/frameworks/NAME made by `tessera cluster init-credentials`)"
        );
    };
    Ok(MasterEndpoint {
        address: address.clone(),
        credential: Credential::load(credentials)?,
    })
}

/// `tessera cluster status`.
pub fn cluster_status(
    master: &MasterUrl,
    credentials: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    print_cluster_status(&cluster_endpoint("status", master, credentials)?)?;
    Ok(ExitCode::SUCCESS)
}

/// How often `tessera cluster exec` says it still waits for an offer.
const EXEC_NOTICE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// `tessera cluster exec --cpus C --mem-mb M -- CMD ARGS...`: exits with the command's status.
pub fn cluster_exec(
    master: &MasterUrl,
    credentials: Option<&std::path::Path>,
    role: &str,
    resources: tessera_framework::Resources,
    timeout_seconds: f64,
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let endpoint = cluster_endpoint("exec", master, credentials)?;
    if !(resources.cpus.is_finite() && resources.cpus > 0.0) || resources.mem_mb == 0 {
        anyhow::bail!("--cpus and --mem-mb must be positive (got {resources})");
    }
    let mut words = command.into_iter();
    let program = words
        .next()
        .ok_or_else(|| anyhow::anyhow!("give the command after `--`"))?;
    let task = tessera_framework::CommandTask {
        program,
        args: words.collect(),
        resources,
        name: "tessera-exec".into(),
        role: role.to_string(),
        timeout: std::time::Duration::from_secs_f64(timeout_seconds.max(0.0)),
        notice_every: EXEC_NOTICE_EVERY,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = tessera_framework::run_command(&endpoint, &task, |event| eprintln!("{event}")) => {
                outcome.map_err(anyhow::Error::from)
            }
            _ = tokio::signal::ctrl_c() => {
                anyhow::bail!("interrupted: the task is killed with its framework")
            }
        }
    })?;
    Ok(ExitCode::from(outcome.exit_status().clamp(0, 255) as u8))
}

/// `tessera cluster init-credentials DIR --agent NAME --framework NAME`.
pub fn init_credentials(
    dir: &std::path::Path,
    agents: &[String],
    frameworks: &[String],
    days: u64,
) -> anyhow::Result<ExitCode> {
    use tessera_credentials::{Issued, Principal};
    let principals: Vec<Principal> = agents
        .iter()
        .map(|a| Principal::Agent(a.clone()))
        .chain(frameworks.iter().map(|f| Principal::Framework(f.clone())))
        .collect();
    let validity = std::time::Duration::from_secs(days.max(1) * 24 * 3600);
    for (principal, issued) in tessera_credentials::init_credentials(dir, &principals, validity)? {
        match issued {
            Issued::Created(path) => println!("{principal}: created {}", path.display()),
            Issued::Kept(path) => println!("{principal}: kept {}", path.display()),
        }
    }
    println!(
        "The CA is in {}; keep its key (ca-key.pem) off the cluster's machines.",
        dir.join("ca").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_cluster_status(master: &MasterEndpoint) -> anyhow::Result<()> {
    let status = tessera_display::cluster_status(master)?;
    for table in tessera_display::cluster(&status) {
        println!("{}", table.text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_complete_from_what_is_typed() {
        assert_eq!(
            complete_command(":st", 3),
            Some((0, vec![":storage".to_string()]))
        );
        let all = complete_command("  :", 3).unwrap();
        assert_eq!(all.0, 2);
        assert_eq!(all.1.len(), COMMANDS.len());
        assert_eq!(complete_command("let x = 1", 5), None);
        assert_eq!(
            complete_command(":save f", 7),
            None,
            "arguments are not commands"
        );
    }

    #[test]
    fn help_lists_tessera_commands_first() {
        let help = help();
        let storage = help.find(":storage").unwrap();
        assert!(storage < help.find(":dep").unwrap());
        assert!(help.contains(":executors"));
    }
}
