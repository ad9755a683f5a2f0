// %% [markdown]
// TPC-H queries 1, 3, 5, 6 and 10 with Tessera's SQL over cached DataFrames: the side of
// `bench/tpch.py` that runs Tessera. It reads the CSV tables `bench/tpch/generate.sh` wrote
// with the schema the peers read them with, caches and counts each (timed apart, as the peers
// load theirs), registers them as tables, then runs each query `$TESSERA_TPCH_TRIALS` times,
// printing each time and, once, the rows:
//
//     TESSERA_TPCH_DATA=DIR tessera --master 'local[2]' run bench/tpch/tpch.rs
//
// Optional: `TESSERA_TPCH_QUERIES` (the folder of `q*.sql`, default `bench/tpch`),
// `TESSERA_TPCH_ONLY` (default `q1,q3,q5,q6,q10`), `TESSERA_TPCH_TRIALS` (default 3).
//
// With `TESSERA_TPCH_COMMANDS` and `TESSERA_TPCH_REPLIES` (two named pipes), it runs the queries
// it is told instead, one a line (`q3`), until `STOP`, and answers each on the replies pipe
// with its time and rows, then `END`: `bench/tpch.py` has it take turns with polars and
// Spark SQL that way, so that every side of a comparison runs in the same minutes.

// %%
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}
let data = std::env::var("TESSERA_TPCH_DATA").expect("set TESSERA_TPCH_DATA to the folder of the TPC-H CSV tables");
let query_dir = env_or("TESSERA_TPCH_QUERIES", "bench/tpch");
let trials: usize = env_or("TESSERA_TPCH_TRIALS", "3").parse().expect("TESSERA_TPCH_TRIALS is a number");
let only: Vec<String> = env_or("TESSERA_TPCH_ONLY", "q1,q3,q5,q6,q10").split(',').map(String::from).collect();

// %%
// The columns of the tables these queries read, typed as the peers type them: keys and
// counts as 64-bit integers, the spec's decimals as f64, dates as dates.
fn schema(columns: &str) -> Schema {
    let fields = columns.split_whitespace().map(|column| {
        let (name, kind) = column.split_once(':').expect("name:kind");
        let dtype = match kind {
            "int" => DataType::Int64,
            "float" => DataType::Float64,
            "date" => DataType::Date,
            _ => DataType::String,
        };
        tessera::Field { name: name.to_string(), dtype }
    });
    Schema { fields: fields.collect() }
}
let tables = [
    ("region", "r_regionkey:int r_name:str r_comment:str"),
    ("nation", "n_nationkey:int n_name:str n_regionkey:int n_comment:str"),
    ("supplier", "s_suppkey:int s_name:str s_address:str s_nationkey:int s_phone:str s_acctbal:float s_comment:str"),
    ("customer", "c_custkey:int c_name:str c_address:str c_nationkey:int c_phone:str c_acctbal:float c_mktsegment:str c_comment:str"),
    ("orders", "o_orderkey:int o_custkey:int o_orderstatus:str o_totalprice:float o_orderdate:date o_orderpriority:str o_clerk:str o_shippriority:int o_comment:str"),
    ("lineitem", "l_orderkey:int l_partkey:int l_suppkey:int l_linenumber:int l_quantity:float l_extendedprice:float l_discount:float l_tax:float l_returnflag:str l_linestatus:str l_shipdate:date l_commitdate:date l_receiptdate:date l_shipinstruct:str l_shipmode:str l_comment:str"),
];

// %%
let loaded = std::time::Instant::now();
for (name, columns) in tables {
    let path = format!("{data}/{name}.csv");
    let table = sc.read_csv_with(&path, CsvOptions::default(), Some(schema(columns))).cache();
    println!("TABLE {name} {}", table.count());
    table.register(name);
}
println!("LOAD {:.3}", loaded.elapsed().as_secs_f64());

// %%
fn query_text(query_dir: &str, name: &str) -> String {
    let text = std::fs::read_to_string(format!("{query_dir}/{name}.sql")).expect("a query file");
    let query: String = text.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    query.trim().trim_end_matches(';').to_string()
}
/// Runs `query` once: its time, and its rows as lines `ROW name\tvalue\t...` if `rows`.
fn run_query(sc: &Context, name: &str, query: &str, rows: bool) -> String {
    let started = std::time::Instant::now();
    let result = sc.sql(query).collect_rows();
    let mut out = format!("TIME {name} {:.4}\n", started.elapsed().as_secs_f64());
    if rows {
        for row in result.rows {
            let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("ROW {name}\t{}\n", values.join("\t")));
        }
    }
    out
}
match (std::env::var("TESSERA_TPCH_COMMANDS"), std::env::var("TESSERA_TPCH_REPLIES")) {
    (Ok(commands), Ok(replies)) => {
        use std::io::{BufRead, Write};
        let commands = std::io::BufReader::new(std::fs::File::open(&commands).expect("the commands pipe"));
        let mut replies = std::fs::OpenOptions::new().write(true).open(&replies).expect("the replies pipe");
        let mut answered = std::collections::HashSet::new();
        for line in commands.lines() {
            let name = line.expect("a command");
            if name == "STOP" {
                break;
            }
            let reply = run_query(&sc, &name, &query_text(&query_dir, &name), answered.insert(name.clone()));
            replies.write_all(format!("{reply}END\n").as_bytes()).expect("a reply");
            replies.flush().expect("a reply");
        }
    }
    _ => {
        for name in &only {
            let query = query_text(&query_dir, name);
            for trial in 0..trials {
                print!("{}", run_query(&sc, name, &query, trial == 0));
            }
        }
    }
}
