"""Rich display in the real tessera-kernel, through jupyter_client: the results of actions show
as HTML tables (with their text grid as text/plain), and so do a DataFrame's first rows, an
RDD handle shows its lineage, and plots show inline as SVG, as a notebook user sees them.

    TESSERA_KERNEL_BIN=target/debug/tessera-kernel pytest tests/jupyter/test_rich_display.py

The kernel fixtures are test_kernel.py's; without TESSERA_KERNEL_BIN every test is skipped.
"""

import re
from pathlib import Path

import pytest

from test_kernel import KERNEL_BIN, kernel, kernel_prefix, run_cell  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(
    not KERNEL_BIN, reason="set TESSERA_KERNEL_BIN to the tessera-kernel binary"
)


def result_data(kc, code):
    """Runs `code`, which must succeed, and returns the data of its one execute_result."""
    reply, outputs = run_cell(kc, code)
    assert reply["status"] == "ok", (reply, outputs)
    results = [o for o in outputs if o["msg_type"] == "execute_result"]
    assert len(results) == 1, outputs
    return results[0]["content"]["data"]


def cells(html):
    """The text of every <td> of an HTML table, row by row."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", row) for row in rows if "<td" in row]


def header(html):
    """The text of every <th>: a DataFrame's holds its column's name and type on two lines."""
    return re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", html, re.S)


def test_collected_pairs_show_as_an_html_table_and_a_text_grid(kernel):
    _, kc = kernel
    data = result_data(
        kc,
        'sc.parallelize(vec![("apple".to_string(), 3u64), ("cherry".to_string(), 12)], 2)'
        ".collect()",
    )
    html, text = data["text/html"], data["text/plain"]
    assert "<table>" in html, html
    assert header(html) == ["_1", "_2"], html
    assert cells(html) == [["apple", "3"], ["cherry", "12"]], html
    assert "│ apple  ┆  3 │" in text, text
    assert "│ cherry ┆ 12 │" in text, text


def test_records_with_named_fields_show_their_field_names(kernel):
    _, kc = kernel
    reply, outputs = run_cell(
        kc,
        "#[derive(Clone, Debug, Serialize, Deserialize)]\n"
        "struct Visit { page: String, hits: u32, referrer: Option<String> }",
    )
    assert reply["status"] == "ok", (reply, outputs)
    data = result_data(
        kc,
        'sc.parallelize(vec![Visit { page: "/".into(), hits: 7, referrer: None }, '
        'Visit { page: "/a&b".into(), hits: 1, referrer: Some("<x>".into()) }], 1).collect()',
    )
    html = data["text/html"]
    assert header(html) == ["page", "hits", "referrer"], html
    assert cells(html) == [["/", "7", "null"], ["/a&amp;b", "1", "&lt;x&gt;"]], html


def test_take_shows_twenty_rows_and_says_how_many_more(kernel):
    _, kc = kernel
    data = result_data(kc, "sc.parallelize((1..=100u64).collect::<Vec<_>>(), 4).take(30)")
    html, text = data["text/html"], data["text/plain"]
    assert header(html) == ["value"], html
    assert cells(html) == [[str(i)] for i in range(1, 21)], html
    assert "… 10 more rows" in html and text.rstrip().endswith("… 10 more rows"), text


def test_count_by_key_shows_a_table_sorted_by_key(kernel):
    _, kc = kernel
    data = result_data(
        kc,
        'sc.parallelize(vec![("b".to_string(), 1u32), ("a".to_string(), 2), ("b".to_string(), 3), '
        '("c".to_string(), 4)], 2).count_by_key()',
    )
    html = data["text/html"]
    assert header(html) == ["key", "value"], html
    assert cells(html) == [["a", "1"], ["b", "2"], ["c", "1"]], html
    assert "│ a   ┆     1 │" in data["text/plain"], data["text/plain"]


def test_stats_show_as_a_one_row_table(kernel):
    _, kc = kernel
    data = result_data(kc, "sc.parallelize(vec![1.0f64, 2.0, 3.0, 4.0], 2).stats()")
    html = data["text/html"]
    assert header(html) == ["count", "mean", "stdev", "min", "max", "sum"], html
    assert cells(html) == [["4", "2.5", "1.118033988749895", "1.0", "4.0", "10.0"]], html
    assert "count" in data["text/plain"] and "┆" in data["text/plain"]


def test_records_that_are_not_serialize_still_show_their_debug_text(kernel):
    _, kc = kernel
    reply, _ = run_cell(kc, "#[derive(Debug)] struct Opaque(u8);")
    assert reply["status"] == "ok"
    data = result_data(kc, "vec![Opaque(1), Opaque(2)]")
    assert data["text/plain"].strip() == "[Opaque(1), Opaque(2)]", data
    assert "text/html" not in data, data


def test_an_rdd_handle_shows_its_lineage_with_shuffles_and_cached_partitions(kernel):
    _, kc = kernel
    reply, outputs = run_cell(
        kc,
        "let counts = sc.parallelize(vec![\"a b\".to_string(), \"b c\".to_string()], 2)\n"
        "    .flat_map(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>())\n"
        "    .map(|w: String| (w, 1u64))\n"
        "    .cache()\n"
        "    .reduce_by_key(|a: u64, b: u64| a + b);\n"
        "counts.count()",
    )
    assert reply["status"] == "ok", (reply, outputs)
    data = result_data(kc, "counts")
    text, html = data["text/plain"], data["text/html"]
    lines = text.splitlines()
    assert re.match(r"\(\d+\) reduce_by_key \[\d+\] shuffle by hash: \(String, u64\)$", lines[0]), text
    assert re.match(
        r" \+-\(2\) map \[\d+\] narrow: \(String, u64\) \[MEMORY_ONLY, 2/2 cached\]$", lines[1]
    ), text
    assert re.match(r"    \|  flat_map \[\d+\] narrow: String$", lines[2]), text
    assert re.match(r"    \|  parallelize \[\d+\] parallelize: String$", lines[3]), text
    assert len(lines) == 4, text
    assert "Lineage of rdd" in html and "<table>" in html, html
    assert [row[0] for row in cells(html)] == ["0", "1", "1", "1"], html
    debug = result_data(kc, "counts.to_debug_string() == format!(\"{}\", counts.lineage())")
    assert debug["text/plain"].strip() == "true"


def test_a_plot_value_shows_inline_as_svg(kernel):
    _, kc = kernel
    data = result_data(
        kc,
        "tessera::plot::line(&[3.0, 2.0, 1.5, 1.2]).title(\"loss by iteration\")"
        ".x_label(\"iteration\")",
    )
    svg = data["image/svg+xml"]
    assert svg.startswith("<svg"), svg[:200]
    assert "loss by iteration" in svg and "<polyline" in svg, svg[:2000]
    text = data["text/plain"]
    assert text.startswith("plot written to "), text
    written = Path(text.removeprefix("plot written to ").strip())
    assert written.read_text() == svg


def test_show_displays_a_plot_and_a_table_before_the_cell_ends(kernel):
    _, kc = kernel
    reply, outputs = run_cell(
        kc,
        "show(&tessera::plot::histogram(&[1.0, 2.0, 2.5, 3.0, 9.0], 4));\n"
        "sc.show(&vec![(1u8, 'x')]);\n"
        "7",
    )
    assert reply["status"] == "ok", (reply, outputs)
    kinds = [
        o["msg_type"]
        for o in outputs
        if o["msg_type"] in ("display_data", "execute_result")
    ]
    assert kinds == ["display_data", "display_data", "execute_result"], outputs
    plot, table = [o["content"]["data"] for o in outputs if o["msg_type"] == "display_data"]
    assert plot["image/svg+xml"].startswith("<svg") and "<rect" in plot["image/svg+xml"]
    assert cells(table["text/html"]) == [["1", "x"]], table


def test_a_data_frames_show_displays_its_first_rows_as_an_html_table(kernel):
    _, kc = kernel
    reply, outputs = run_cell(
        kc,
        'let path = std::env::temp_dir().join(format!("tessera-show-{}.csv", std::process::id()));\n'
        'std::fs::write(&path, "city,temp\\noslo,3\\nlima,19\\ncairo,30\\n").unwrap();\n'
        "sc.read_csv(path.to_str().unwrap()).sort_by(&[\"temp\"], &[false]).show(2);\n"
        "std::fs::remove_file(&path).unwrap();\n"
        "7",
    )
    assert reply["status"] == "ok", (reply, outputs)
    # Jobs that run long enough show a progress bar too.
    shown = [
        o["content"]["data"]
        for o in outputs
        if o["msg_type"] == "display_data"
        and "<progress" not in o["content"]["data"].get("text/html", "")
    ]
    assert len(shown) == 1, outputs
    html, text = shown[0]["text/html"], shown[0]["text/plain"]
    assert header(html) == ["city\nstr", "temp\ni64"], html
    assert cells(html) == [["oslo", "3"], ["lima", "19"]], html
    assert "only showing the first 2 rows" in html, html
    assert "│ oslo" in text and "cairo" not in text, text
