//! How much rustc optimises a cell whose code may run on executors: a session chooses between
//! compiling fast (a REPL or notebook, where a person waits for every cell) and running fast
//! (a script, run as a whole, whose compiled cells are kept and reused).

/// The `opt-level`, codegen units and inlining threshold of a cell whose code may run on
/// executors.
///
/// Codegen units matter as much as the level: rustc compiles a cell's closure and the loop that
/// calls it for every record (an instance of the `tessera` crate's generic code) in whichever
/// unit it places each, and without LTO it cannot inline across units. In one unit, LLVM
/// inlines the closure into the loop; in two, every record pays a call and the code around it
/// is not vectorised. Measured on the LR notebook's cached iterations (release build, 1M
/// points, `local[2]`): 55 ms in two units at `opt-level=1`, 33–37 ms in one at 2; the
/// notebook's two largest cells then compiled in 0.7–1.2 s instead of 0.5–0.6 s.
///
/// Even in one unit, LLVM's default threshold (225 at `opt-level=2`) leaves a closure of a few
/// dozen lines (LR's gradient, with its loops and calls of `exp`) a function of its own: every
/// record then crosses a call with its 88-byte point and 96-byte result through the stack. A
/// higher threshold inlines it into the loop over the batch. Measured the same way: later
/// iterations 27–30 ms (medians of 99) against 23–26 ms with a threshold of 2000, the
/// notebook's cells compiling in 1.4–1.5 s against 1.1 s.
///
/// At `opt-level=3` rather than 2, the same loop over a cached partition took a fifth less of
/// the executor's CPU (LR notebook, three interleaved rounds: 43.6–47.0 ms an iteration against
/// 56.3–57.7 ms), for no measurable change in the notebook's compile time (2.4–3.1 s a run
/// either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Optimisation {
    /// rustc's `opt-level`.
    pub opt_level: u8,
    /// rustc's `codegen-units`: two compile in parallel; one lets closures be inlined.
    pub codegen_units: u8,
    /// LLVM's inlining threshold (`-inline-threshold`), if not its default for the level.
    pub inline_threshold: Option<u16>,
}

impl Optimisation {
    /// For a person waiting on each cell: the closure cell of the interactive benchmark compiles
    /// in about a third of a second.
    pub const INTERACTIVE: Optimisation = Optimisation {
        opt_level: 1,
        codegen_units: 2,
        inline_threshold: None,
    };

    /// For a cell whose code runs only in the child: a fifth faster to compile than at
    /// `opt-level=1`.
    pub const UNOPTIMISED: Optimisation = Optimisation {
        opt_level: 0,
        codegen_units: 2,
        inline_threshold: None,
    };

    /// For a script: about two and a half times the compile time of a cell with closures, paid
    /// once per change to its source, for loops over records that run up to twice as fast.
    pub const THROUGHPUT: Optimisation = Optimisation {
        opt_level: 3,
        codegen_units: 1,
        inline_threshold: Some(2000),
    };

    /// This one with a level, a number of units and an inlining threshold given as text
    /// (`TESSERA_CELL_OPT_LEVEL`, `TESSERA_CELL_CODEGEN_UNITS`, `TESSERA_CELL_INLINE_THRESHOLD`)
    /// in place of its own; what does not parse as a level (0 to 3), a number of units (1 to
    /// 255) or a threshold (0 to 65535) is ignored.
    pub fn overridden(
        self,
        opt_level: Option<&str>,
        codegen_units: Option<&str>,
        inline_threshold: Option<&str>,
    ) -> Optimisation {
        let parse = |text: Option<&str>, range: std::ops::RangeInclusive<u16>| {
            text.and_then(|t| t.trim().parse::<u16>().ok())
                .filter(|n| range.contains(n))
        };
        Optimisation {
            opt_level: parse(opt_level, 0..=3).map_or(self.opt_level, |n| n as u8),
            codegen_units: parse(codegen_units, 1..=255).map_or(self.codegen_units, |n| n as u8),
            inline_threshold: parse(inline_threshold, 0..=u16::MAX).or(self.inline_threshold),
        }
    }

    /// [`Optimisation::overridden`] by the environment.
    pub fn from_env(self) -> Optimisation {
        let var = |name: &str| std::env::var(name).ok();
        self.overridden(
            var("TESSERA_CELL_OPT_LEVEL").as_deref(),
            var("TESSERA_CELL_CODEGEN_UNITS").as_deref(),
            var("TESSERA_CELL_INLINE_THRESHOLD").as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Optimisation;

    #[test]
    fn what_is_given_replaces_the_default_and_what_is_not_a_level_is_ignored() {
        let base = Optimisation::INTERACTIVE;
        assert_eq!(base.overridden(None, None, None), base);
        assert_eq!(
            base.overridden(Some("3"), Some("1"), Some("500")),
            Optimisation {
                opt_level: 3,
                codegen_units: 1,
                inline_threshold: Some(500),
            }
        );
        assert_eq!(base.overridden(Some("4"), Some("0"), Some("-1")), base);
        assert_eq!(base.overridden(Some("fast"), Some(""), Some("many")), base);
        let throughput = Optimisation::THROUGHPUT.overridden(Some(" 0 "), None, None);
        assert_eq!(throughput.opt_level, 0);
        assert_eq!(
            throughput.inline_threshold,
            Optimisation::THROUGHPUT.inline_threshold
        );
    }
}
