//! The process that runs a session's cells and keeps its variables; started by the engine
//! ([`tessera_cells::Engine`]), never by a person.

fn main() {
    tessera_cells::run_child_if_requested();
    eprintln!(
        "tessera-cell-child runs the cells of a Tessera session and is started by it; run \
         `tessera` instead"
    );
    std::process::exit(2);
}
