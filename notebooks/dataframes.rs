// %% [markdown]
// Mining sales with DataFrames: read CSV files split into partitions, keep the rows in
// executor memory as polars DataFrames, and ask several questions of them — aggregations that
// run partially on each partition and combine after a shuffle, a join that broadcasts a small
// table, and the plan each runs.
//
//     tessera run notebooks/dataframes.rs
//
// The first cell generates the data into `$TESSERA_EXAMPLE_DIR` (default: `tessera-sales` in
// the system's temporary directory): 100,000 orders of a year in four CSV files, and a table
// of products.

// %%
let dir = std::env::var("TESSERA_EXAMPLE_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir().join("tessera-sales"));
{
    std::fs::create_dir_all(dir.join("orders")).unwrap();
    let mut seed = 42u64;
    let mut next = move || { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; seed };
    let regions = ["north", "south", "east", "west"];
    for file in 0..4u64 {
        let mut text = String::from("order,day,region,product,quantity,price\n");
        for i in 0..25_000u64 {
            let (day, region, product) = (next() % 365, regions[(next() % 4) as usize], next() % 50);
            let (quantity, price) = (1 + next() % 5, format!("{}.{:02}", 5 + next() % 95, next() % 100));
            text.push_str(&format!("{},{day},{region},p{product},{quantity},{price}\n", file * 25_000 + i));
        }
        std::fs::write(dir.join(format!("orders/part-{file}.csv")), text).unwrap();
    }
    let categories = ["tools", "garden", "kitchen", "toys", "books"];
    let mut products = String::from("product,category\n");
    for p in 0..50 {
        products.push_str(&format!("p{p},{}\n", categories[p % 5]));
    }
    std::fs::write(dir.join("products.csv"), products).unwrap();
}
println!("data in {}", dir.display());

// %%
// Read once, keep in executor memory; the handle shows the schema polars inferred.
let orders = sc.read_csv(&format!("{}/orders/*.csv", dir.display())).cache();
let products = sc.read_csv(&format!("{}/products.csv", dir.display()));
orders

// %%
println!("orders: {}", orders.count());

// %%
// Revenue by region: a partial sum on each partition, a shuffle by region, a final sum.
let revenue = orders.with_column((col("quantity") * col("price")).alias("revenue"));
revenue.group_by(["region"]).agg([col("revenue").sum().round(2).alias("revenue"), len().alias("orders")]).sort(&["region"]).show(10);

// %%
// Revenue by category: the small products table is broadcast to every executor for the join.
let by_category = revenue
    .join(&products, &["product"], &["product"], JoinKind::Inner)
    .group_by(["category"])
    .agg([col("quantity").sum().alias("units"), col("revenue").sum().round(2).alias("revenue")])
    .sort_by(&["revenue"], &[true]);
by_category.show(5);

// %%
// How it ran: two stages around the shuffle, the broadcast side, and each partition's polars plan.
by_category.explain()

// %%
// SQL over the same cached partitions: register the DataFrames as tables, and the query is
// planned as the same distributed operations — the small products table broadcast to the
// join, the aggregation in two phases, only the columns it reads.
orders.register("orders");
products.register("products");
let busiest = sc.sql("SELECT p.category, o.region, count(*) AS orders, sum(o.quantity) AS units
    FROM orders o JOIN products p ON o.product = p.product
    WHERE o.day < 180
    GROUP BY p.category, o.region
    ORDER BY units DESC, p.category, o.region
    LIMIT 5");
busiest.show(5);

// %%
// Large orders in the first quarter, answered from the cached partitions.
let large = orders.filter(col("day").lt(lit(90)).and((col("quantity") * col("price")).gt(lit(400.0))));
println!("large orders in the first quarter: {}", large.count());
