-- The seed job (1,000 calls to TheCatAPI, ~350 ms each) on the bundled mock API.
-- Start the mock first, then run this file:
--   cargo run --all-features -- mock-api --port 8089 --latency-ms 350 &
--   cargo run --all-features -- -f sql/cats.sql

-- Serial baseline on a small N: 10 calls one after another (about 10 x 350 ms).
SET async_udf.max_in_flight = 1;
COPY (
  SELECT http_get('http://127.0.0.1:8089/v1/images/search?n=' || value) AS r
  FROM generate_series(1, 10)
) TO 'cats' STORED AS NOOP;

-- 1,000 calls with up to 1,000 in flight (about 350 ms in all).
SET async_udf.max_in_flight = 1000;
COPY (
  SELECT http_get('http://127.0.0.1:8089/v1/images/search?n=' || value) AS r
  FROM generate_series(1, 1000)
) TO 'cats' STORED AS NOOP;

-- Land the answers: one row per call, fields parsed from the JSON body.
SELECT value AS n,
       r['status'] AS status,
       json_get_str(r['body'], 0, 'id') AS id,
       json_get_int(r['body'], 0, 'width') AS width,
       json_get_int(r['body'], 0, 'height') AS height
FROM (
  SELECT value, http_get('http://127.0.0.1:8089/v1/images/search?n=' || value) AS r
  FROM generate_series(1, 5)
);
