-- TPC-H Q6 (forecasting revenue change), validation parameters: DATE = 1994-01-01,
-- DISCOUNT = 0.06, QUANTITY = 24.
-- The spec's `l_discount between 0.06 - 0.01 and 0.06 + 0.01` is written with its bounds
-- worked out (0.05 and 0.07), the same rows: Spark and polars read these literals as decimals,
-- but where they are binary floating point (an f64 planner), 0.06 + 0.01 is
-- 0.06999999999999999 and would drop the rows whose discount is 0.07.
select
    sum(l_extendedprice * l_discount) as revenue
from
    lineitem
where
    l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.05 and 0.07
    and l_quantity < 24
