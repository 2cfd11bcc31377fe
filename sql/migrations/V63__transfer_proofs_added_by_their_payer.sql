-- A tenant's payer adds a transfer proof as itself: billing_transfer_proof_add
-- (sql/api/payments.sql) runs as its caller from now on, as the
-- registration of the proof's file (object_create) in the same request
-- does. On Citus a transaction may touch a tenant's shard as one user only
-- ("cannot perform query on placements that were modified in this
-- transaction by a different user"): the file registered as the caller and
-- the proof written as the database owner failed there.
--
-- What the caller may insert: a pending proof of its own tenant, with the
-- permission billing.pay; the operator's decision (status, decided_*,
-- payment_id, reject_reason) stays the owner's. The invoice must be one
-- the caller reads (finalized, its tenant's: the foreign key and the
-- function's check), the file its own upload (require_own_object).
grant insert (tenant_id, billing_invoice_id, object_id) on billing_transfer_proofs to bizos_authenticated;
create policy "payers add pending proofs to their tenant's invoices" on billing_transfer_proofs
  for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and status = 'pending'
              and decided_at is null and decided_by is null and payment_id is null and reject_reason is null
              and (select has_permission('billing.pay')));
