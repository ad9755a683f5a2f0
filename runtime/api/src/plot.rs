//! Charts of local data (the results of actions): lines, scatter plots and histograms, drawn as
//! SVG with `plotters`.
//!
//! A [`Plot`] that is a cell's value shows inline in Jupyter (`image/svg+xml`); a terminal, which
//! cannot show it, prints the path of an SVG file it was written to. `sc.show(&plot)` shows one
//! before the cell ends (in a loop, say), and [`Plot::save`] writes it where you ask.
//!
//! ```ignore
//! use tessera::plot;
//! plot::line(&losses).title("loss by iteration").x_label("iteration").y_label("loss")
//! ```
//!
//! Files for terminals go to `$TESSERA_PLOT_DIR`, else `tessera-plots-$USER` in the system's
//! temporary directory, named by a hash of their content (showing the same plot twice writes one
//! file). A notebook shows the SVG itself; the file is written all the same, since a cell cannot
//! tell which front end shows its value.

use crate::error::Error;
pub use crate::plot_error::{PLOT_DIR_ENV, PlotError};
use crate::rich::RichDisplay;
use crate::stats::Numeric;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// The colours of successive series (Tableau's ten, readable on white and to most colour-blind
/// readers).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A chart: one or more series on shared axes, with an optional title and axis labels.
///
/// Its builder methods take `&self` and return a new plot, as an RDD's transformations do: a
/// cell can end in `plot.title("...")` on a `plot` of its own and still show the chart (a last
/// value that moved a variable of its cell would show as `Debug` text).
#[derive(Clone, PartialEq)]
pub struct Plot {
    title: Option<String>,
    x_label: Option<String>,
    y_label: Option<String>,
    size: (u32, u32),
    series: Vec<Series>,
}

/// What a plot holds, without every point (a plot of a million points is a million points).
impl std::fmt::Debug for Plot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let series: Vec<String> = self
            .series
            .iter()
            .map(|s| {
                let kind = match s.kind {
                    SeriesKind::Line => "line",
                    SeriesKind::Scatter => "scatter",
                    SeriesKind::Markers => "markers",
                    SeriesKind::Bars { .. } => "histogram",
                };
                match &s.label {
                    Some(label) => format!("{label:?}: {kind} of {} points", s.points.len()),
                    None => format!("{kind} of {} points", s.points.len()),
                }
            })
            .collect();
        f.debug_struct("Plot")
            .field("title", &self.title)
            .field("series", &series)
            .finish()
    }
}

/// One series of a plot.
#[derive(Clone, Debug, PartialEq)]
struct Series {
    label: Option<String>,
    kind: SeriesKind,
    /// Finite points only: others cannot be placed on the axes.
    points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum SeriesKind {
    /// Points joined in order.
    Line,
    /// Points as dots.
    Scatter,
    /// Points as large crosses (the centres of clusters, say).
    Markers,
    /// Bars from 0 up to each point's y, `width` wide and centred on its x.
    Bars { width: f64 },
}

/// `values` as a line over their indices (0, 1, 2, ...): a loss by iteration.
pub fn line<Y: Numeric>(values: &[Y]) -> Plot {
    Plot::new().line_series(None, &indexed(values))
}

/// `points` (x, y) joined by a line, in order.
pub fn line_xy<X: Numeric, Y: Numeric>(points: &[(X, Y)]) -> Plot {
    Plot::new().line_series(None, points)
}

/// `points` (x, y) as dots.
pub fn scatter<X: Numeric, Y: Numeric>(points: &[(X, Y)]) -> Plot {
    Plot::new().scatter_series(None, points)
}

/// How many of `values` fall in each of `bins` equal ranges between their least and greatest.
pub fn histogram<V: Numeric>(values: &[V], bins: usize) -> Plot {
    Plot::new().histogram_series(None, values, bins)
}

impl Default for Plot {
    fn default() -> Plot {
        Plot::new()
    }
}

impl Plot {
    /// An empty plot, 640 × 400, to add series to.
    pub fn new() -> Plot {
        Plot {
            title: None,
            x_label: None,
            y_label: None,
            size: (640, 400),
            series: Vec::new(),
        }
    }

    /// The same plot with `title` above it.
    pub fn title(&self, title: &str) -> Plot {
        let mut plot = self.clone();
        plot.title = Some(title.to_string());
        plot
    }

    /// The same plot with the x axis labelled `label`.
    pub fn x_label(&self, label: &str) -> Plot {
        let mut plot = self.clone();
        plot.x_label = Some(label.to_string());
        plot
    }

    /// The same plot with the y axis labelled `label`.
    pub fn y_label(&self, label: &str) -> Plot {
        let mut plot = self.clone();
        plot.y_label = Some(label.to_string());
        plot
    }

    /// The same plot `width` × `height` pixels.
    pub fn size(&self, width: u32, height: u32) -> Plot {
        let mut plot = self.clone();
        plot.size = (width.max(100), height.max(100));
        plot
    }

    /// Adds `points` joined by a line; a `label` puts it in the legend.
    pub fn line_series<X: Numeric, Y: Numeric>(
        &self,
        label: Option<&str>,
        points: &[(X, Y)],
    ) -> Plot {
        self.with(label, SeriesKind::Line, points)
    }

    /// Adds `points` as dots; a `label` puts them in the legend.
    pub fn scatter_series<X: Numeric, Y: Numeric>(
        &self,
        label: Option<&str>,
        points: &[(X, Y)],
    ) -> Plot {
        self.with(label, SeriesKind::Scatter, points)
    }

    /// Adds `points` as large crosses, to stand out over dots (the centres of clusters).
    pub fn marker_series<X: Numeric, Y: Numeric>(
        &self,
        label: Option<&str>,
        points: &[(X, Y)],
    ) -> Plot {
        self.with(label, SeriesKind::Markers, points)
    }

    /// Adds a histogram of `values` in `bins` (at least one) equal ranges between their least
    /// and greatest.
    pub fn histogram_series<V: Numeric>(
        &self,
        label: Option<&str>,
        values: &[V],
        bins: usize,
    ) -> Plot {
        let (width, counts) = bin(values, bins.max(1));
        let mut plot = self.clone();
        plot.series.push(Series {
            label: label.map(String::from),
            kind: SeriesKind::Bars { width },
            points: counts,
        });
        plot
    }

    fn with<X: Numeric, Y: Numeric>(
        &self,
        label: Option<&str>,
        kind: SeriesKind,
        points: &[(X, Y)],
    ) -> Plot {
        let mut plot = self.clone();
        plot.series.push(Series {
            label: label.map(String::from),
            kind,
            points: points
                .iter()
                .map(|&(x, y)| (x.to_f64(), y.to_f64()))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect(),
        });
        plot
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> String {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            if let Err(e) = self.draw(&root) {
                // plotters' error borrows the backend: only its text can leave.
                Error::from(PlotError::Draw {
                    reason: e.to_string(),
                })
                .raise()
            }
        }
        svg
    }

    /// Writes the plot as SVG to `path` (relative to the session's working directory) and
    /// returns the path written.
    pub fn save(&self, path: impl AsRef<Path>) -> PathBuf {
        let failed = |path: &Path, source| -> ! {
            Error::from(PlotError::Save {
                path: path.to_path_buf(),
                source,
            })
            .raise()
        };
        let path = std::path::absolute(path.as_ref()).unwrap_or_else(|e| failed(path.as_ref(), e));
        std::fs::write(&path, self.svg()).unwrap_or_else(|e| failed(&path, e));
        path
    }

    /// Writes the plot where a terminal's plots go (see the module's documentation) and returns
    /// the file's path.
    fn save_for_terminal(&self, svg: &str) -> Result<PathBuf, PlotError> {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let dir = match std::env::var_os(PLOT_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let user = std::env::var("USER")
                    .ok()
                    .or_else(|| uid.map(|uid| uid.to_string()))
                    .unwrap_or_else(|| "user".to_string());
                std::env::temp_dir().join(format!("tessera-plots-{user}"))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|source| PlotError::TerminalDirectory {
            dir: dir.clone(),
            source,
        })?;
        // The temporary directory is shared: never write into a directory another user made.
        let owner = std::fs::metadata(&dir).map(|m| m.uid()).ok();
        if uid.is_some() && owner != uid {
            return Err(PlotError::NotYours { dir });
        }
        let mut hasher = crate::hash::KeyHasher::default();
        hasher.write(svg.as_bytes());
        let path = dir.join(format!("plot-{:016x}.svg", hasher.finish()));
        std::fs::write(&path, svg).map_err(|source| PlotError::TerminalWrite {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The axes' ranges: every series' points (and a bar's width, and 0 under bars), widened a
    /// little so that nothing sits on the frame, and to a unit when all values are equal.
    fn ranges(&self) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for series in &self.series {
            let half = match series.kind {
                SeriesKind::Bars { width } => {
                    y0 = y0.min(0.0);
                    width / 2.0
                }
                _ => 0.0,
            };
            for &(x, y) in &series.points {
                (x0, x1) = (x0.min(x - half), x1.max(x + half));
                (y0, y1) = (y0.min(y), y1.max(y));
            }
        }
        let widen = |lo: f64, hi: f64, from_zero: bool| {
            if lo > hi {
                return 0.0..1.0; // no points
            }
            if lo == hi {
                return lo - 0.5..hi + 0.5;
            }
            let pad = (hi - lo) * 0.05;
            let low = if from_zero && lo == 0.0 {
                0.0
            } else {
                lo - pad
            };
            low..hi + pad
        };
        let bars = self
            .series
            .iter()
            .any(|s| matches!(s.kind, SeriesKind::Bars { .. }));
        (widen(x0, x1, false), widen(y0, y1, bars))
    }

    fn draw(
        &self,
        root: &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let (x_range, y_range) = self.ranges();
        let mut builder = ChartBuilder::on(root);
        builder
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60);
        if let Some(title) = &self.title {
            builder.caption(title, ("sans-serif", 20));
        }
        let mut chart = builder.build_cartesian_2d(x_range, y_range)?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(WHITE.mix(0.0));
        if let Some(label) = &self.x_label {
            mesh.x_desc(label);
        }
        if let Some(label) = &self.y_label {
            mesh.y_desc(label);
        }
        mesh.draw()?;
        for (index, series) in self.series.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let points = series.points.iter().copied();
            let drawn = match series.kind {
                SeriesKind::Line => {
                    chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                }
                SeriesKind::Scatter => chart
                    .draw_series(points.map(|p| Circle::new(p, 3, colour.mix(0.8).filled())))?,
                SeriesKind::Markers => {
                    chart.draw_series(points.map(|p| Cross::new(p, 8, colour.stroke_width(3))))?
                }
                SeriesKind::Bars { width } => chart.draw_series(points.map(|(x, y)| {
                    Rectangle::new(
                        [(x - width / 2.0, 0.0), (x + width / 2.0, y)],
                        colour.mix(0.7).filled(),
                    )
                }))?,
            };
            if let Some(label) = &series.label {
                drawn.label(label.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 12, y + 4)], colour.filled())
                });
            }
        }
        if self.series.iter().any(|s| s.label.is_some()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}

/// Inline SVG for notebooks; for terminals, the path of a file holding it.
impl RichDisplay for Plot {
    fn mime_bundle(&self) -> Vec<(String, String)> {
        let svg = self.svg();
        let text = match self.save_for_terminal(&svg) {
            Ok(path) => format!("plot written to {}", path.display()),
            Err(why) => format!("(a plot: {why})"),
        };
        vec![
            ("image/svg+xml".to_string(), svg),
            ("text/plain".to_string(), text),
        ]
    }
}

/// `values` paired with their indices.
fn indexed<Y: Numeric>(values: &[Y]) -> Vec<(u64, f64)> {
    (0u64..).zip(values.iter().map(|v| v.to_f64())).collect()
}

/// The width of each of `bins` equal ranges over the finite `values`, and each range's centre
/// with how many values fall in it (the greatest value in the last).
fn bin<V: Numeric>(values: &[V], bins: usize) -> (f64, Vec<(f64, f64)>) {
    let finite: Vec<f64> = values
        .iter()
        .map(|v| v.to_f64())
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if finite.is_empty() {
        return (1.0, Vec::new());
    }
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0u64; bins];
    for v in finite {
        let index = (((v - lo) / width) as usize).min(bins - 1);
        counts[index] += 1;
    }
    let bars = counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| (lo + width * (i as f64 + 0.5), n as f64))
        .collect();
    (width, bars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_where_to_write_instead() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let save = PlotError::Save {
            path: "/ro/plot.svg".into(),
            source: denied(),
        };
        let text = Error::from(save).to_string();
        assert!(
            text.starts_with("cannot save the plot to /ro/plot.svg: ")
                && text.ends_with("choose a writable path"),
            "{text}"
        );
        for error in [
            PlotError::TerminalDirectory {
                dir: "/tmp/tessera-plots-ada".into(),
                source: denied(),
            },
            PlotError::NotYours {
                dir: "/tmp/tessera-plots-ada".into(),
            },
            PlotError::TerminalWrite {
                path: "/tmp/tessera-plots-ada/plot-1.svg".into(),
                source: denied(),
            },
        ] {
            let text = error.to_string();
            assert!(
                text.contains("/tmp/tessera-plots-ada") && text.contains("set TESSERA_PLOT_DIR"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_line_plot_is_an_svg_with_its_title_and_labels() {
        let svg = line(&[3.0, 2.0, 1.5, 1.2])
            .title("loss by iteration")
            .x_label("iteration")
            .y_label("loss")
            .svg();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in ["loss by iteration", "iteration", "loss"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.contains("<polyline"), "a line is drawn");
    }

    #[test]
    fn scatter_series_get_their_own_colours_and_a_legend() {
        let svg = Plot::new()
            .scatter_series(Some("cluster 0"), &[(0.0, 0.0), (1.0, 1.0)])
            .scatter_series(Some("cluster 1"), &[(5i32, 5i32)])
            .marker_series(Some("centres"), &[(0.5, 0.5), (5.0, 5.0)])
            .svg();
        assert!(
            svg.contains("#1F77B4") && svg.contains("#FF7F0E"),
            "two colours"
        );
        assert!(svg.contains("<circle"), "dots");
        for label in ["cluster 0", "cluster 1", "centres"] {
            assert!(svg.contains(label), "{label} not in the legend");
        }
    }

    #[test]
    fn a_histogram_counts_values_in_equal_bins() {
        let (width, bars) = bin(&[0.0, 1.0, 1.5, 2.0, 4.0, f64::NAN], 4);
        assert_eq!(width, 1.0);
        assert_eq!(bars, vec![(0.5, 1.0), (1.5, 2.0), (2.5, 1.0), (3.5, 1.0)]);
        let (_, one) = bin(&[7u8, 7, 7], 3);
        assert_eq!(one.iter().map(|b| b.1).sum::<f64>(), 3.0);
        assert!(histogram(&[1u32, 2, 2, 3], 3).svg().contains("<rect"));
    }

    #[test]
    fn debug_text_summarises_the_series() {
        let plot = line(&[1.0; 1000]).title("flat");
        assert_eq!(
            format!("{plot:?}"),
            "Plot { title: Some(\"flat\"), series: [\"line of 1000 points\"] }"
        );
    }

    #[test]
    fn an_empty_plot_still_draws() {
        let svg = Plot::new().title("nothing yet").svg();
        assert!(svg.contains("nothing yet"));
        let svg = line::<f64>(&[f64::NAN, 1.0]).svg();
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn a_plot_shown_in_a_terminal_is_written_to_the_file_it_names() {
        let dir = std::env::temp_dir().join(format!("tessera-plot-test-{}", std::process::id()));
        // SAFETY: this is the only test that reads or sets the variable.
        unsafe { std::env::set_var(PLOT_DIR_ENV, &dir) };
        let plot = scatter(&[(1.0, 2.0), (2.0, 3.0)]);
        let bundle = plot.mime_bundle();
        let text = &bundle.iter().find(|(m, _)| m == "text/plain").unwrap().1;
        let path = text.strip_prefix("plot written to ").expect(text);
        let svg = &bundle.iter().find(|(m, _)| m == "image/svg+xml").unwrap().1;
        assert_eq!(&std::fs::read_to_string(path).unwrap(), svg);
        assert!(Path::new(path).starts_with(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
