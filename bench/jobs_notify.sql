-- scripts/bench jobs, diagnostic: one row into bench_notify_rows and a
-- pg_notify on the queue's channel in one transaction, as job_enqueue does
-- at its end. PostgreSQL serialises the commits of notifying transactions
-- (PreCommit_Notify holds a cluster-wide lock on "database 0" from before
-- the commit until after it), so their WAL flushes cannot be grouped.
begin;
insert into bench_notify_rows (v) values ('x');
select pg_notify('bench_jobs', 'k');
commit;
