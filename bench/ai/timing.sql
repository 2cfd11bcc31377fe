-- Shared by bench/ai/*_time.sql (\ir): pg_temp.ms(sql) runs a statement
-- and returns its wall time in ms; `times` collects one row per
-- measurement (round, what, ms) for the medians.
create function pg_temp.ms(q text) returns double precision
language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
begin
  execute q;
  return extract(epoch from clock_timestamp() - t0) * 1000;
end
$$;
create temporary table times (round int, what text, ms double precision);
