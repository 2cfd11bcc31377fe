-- Issue 14: the sweep of dead uploads (V15) becomes a `storage.sweep` job of
-- the worker, one per tenant like every job of the queue. Its claim takes
-- the tenant (sql/api/files.sql `upload_sweep_claim(tenant_id, …)`); the
-- tenant-less signature goes.
drop function if exists upload_sweep_claim(double precision, integer);
update job_kinds
   set description = 'remove the stored bytes of the tenant''s dead uploads'
 where kind = 'storage.sweep';
