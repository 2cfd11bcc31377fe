-- Data and measurement functions of bench/vector/run (database bench_vector).
-- Vectors: 384 dimensions, 1000 clusters in 50 super-clusters (as topics
-- within domains): a cluster's centre is its super-cluster's centre (uniform
-- in [-1, 1]^384) plus an offset (uniform in [-0.6, 0.6]^384); a row is its
-- cluster's centre plus two noise vectors, each a pool vector
-- (uniform in [-0.5, 0.5]^384, 1000 of them) rotated by a pseudo-random
-- number of positions, pool entries and rotations drawn independently of
-- the cluster (so no noise component is shared by a block of rows that
-- k-means could mistake for a cluster); a query is a centre plus fresh
-- noise of about the same spread. All generated server-side, nothing goes
-- through text.
create table supers as
  select g, array_agg((random() * 2 - 1)::real order by d) as v
    from generate_series(1, 50) g, generate_series(1, 384) d group by g;
create table centers as
  select c, array_agg(s.v[d] + ((random() - 0.5) * 1.2)::real order by d) as v
    from generate_series(1, 1000) c
    join supers s on s.g = 1 + c % 50
    cross join generate_series(1, 384) d
   group by c;
create table noise as
  select j, array_agg((random() - 0.5)::real order by d) as v
    from generate_series(1, 1000) j, generate_series(1, 384) d group by j;

-- tenant 1 holds 1% of the rows (the filtered benchmark), picked by a hash
-- of the id so that they spread over all clusters.
create table items (id int primary key, tenant int not null, embedding bizos.vector(384) not null);

create function load_items(p_from int, p_to int) returns void language sql as $$
  insert into items
  select i, case when (i::bigint * 2654435761 % 1000003) % 100 = 0 then 1 else 2 + i % 37 end,
         (select array_agg(a + b + c order by o)
            from unnest(ce.v, n1.v[s1 + 1:384] || n1.v[1:s1], n2.v[s2 + 1:384] || n2.v[1:s2])
                 with ordinality t(a, b, c, o))::bizos.vector
    from (select i,
                 1 + (i::bigint * 7919) % 1000 as ce,
                 1 + (i::bigint * 48271 % 1000003) % 1000 as j1, (i::bigint * 16807 % 1000003) % 384 as s1,
                 1 + (i::bigint * 69621 % 1000003) % 1000 as j2, (i::bigint * 39373 % 1000003) % 384 as s2
            from generate_series(p_from, p_to) i) g
    join centers ce on ce.c = g.ce
    join noise n1 on n1.j = g.j1
    join noise n2 on n2.j = g.j2
$$;

-- Queries: other points of the same clusters, with fresh noise.
create table queries (qid int primary key, v bizos.vector(384), truth int[], truth_f int[]);
insert into queries
  select q, (select array_agg(a + ((random() - 0.5) * 1.4)::real order by o) from unnest(ce.v) with ordinality t(a, o))::bizos.vector
    from generate_series(1, 100) q join centers ce on ce.c = 1 + (q * 104729) % 1000;

-- run_queries(probes, filtered, exact): runs every query once (dynamic SQL,
-- so each is planned with the settings of this call) and returns the mean
-- recall@10 against the stored truth, queries per second, the fewest rows
-- any query returned, and the latency percentiles. exact = seq scan, which
-- also (re)computes the truth.
create function run_queries(p_probes int, p_filtered boolean, p_exact boolean)
returns table (recall float8, qps float8, min_rows int, p50_ms float8, p99_ms float8)
language plpgsql as $$
declare
  r record; t0 timestamptz; got int[]; secs float8 := 0; hits int := 0; nq int := 0;
  lat float8[] := '{}'; q text;
begin
  perform set_config('bizos.ivf_probes', p_probes::text, true);
  perform set_config('enable_seqscan', p_exact::text, true);
  perform set_config('enable_indexscan', (not p_exact)::text, true);
  perform set_config('enable_bitmapscan', 'off', true);
  q := 'select array_agg(id) from (select id from items'
       || case when p_filtered then ' where tenant = 1' else '' end
       || ' order by embedding operator(bizos.<=>) $1 limit 10) s';
  min_rows := 1000;
  for r in select * from queries order by qid loop
    t0 := clock_timestamp();
    execute q into got using r.v;
    lat := lat || extract(epoch from clock_timestamp() - t0) * 1000;
    secs := secs + extract(epoch from clock_timestamp() - t0);
    nq := nq + 1;
    min_rows := least(min_rows, coalesce(cardinality(got), 0));
    if p_exact then
      if p_filtered then update queries set truth_f = got where qid = r.qid;
      else update queries set truth = got where qid = r.qid; end if;
    else
      hits := hits + (select count(*) from unnest(got) g
                       where g = any(case when p_filtered then r.truth_f else r.truth end));
    end if;
  end loop;
  recall := case when p_exact then 1.0 else hits::float8 / (10 * nq) end;
  qps := nq / secs;
  p50_ms := (select percentile_disc(0.5) within group (order by x) from unnest(lat) x);
  p99_ms := (select percentile_disc(0.99) within group (order by x) from unnest(lat) x);
  return next;
end $$;
