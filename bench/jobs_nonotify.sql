-- scripts/bench jobs, diagnostic: the baseline of jobs_notify.sql, the same
-- transaction with a plain SELECT in place of the pg_notify.
begin;
insert into bench_notify_rows (v) values ('x');
select 'bench_jobs', 'k';
commit;
