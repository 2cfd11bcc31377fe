-- The stage history is audited when a row of it changes or goes, not when
-- one is written (issue 20).
--
-- prospect_stage_history is written by one trigger only,
-- record_stage_change (sql/api/crm.sql), in the statement that inserts a
-- prospect or changes its stage; request roles may only read it. The
-- audit entry of that prospect change already holds everything the
-- history row says, in the same transaction and chain: the stage (after,
-- and for an update before), who (actor), when (at, txid) and in which
-- request. An entry for the history row repeated it: a fourth audited
-- insert in every lead bundle, about a twelfth of its CPU (BENCHMARKS.md,
-- step ten).
--
-- What stays audited is what the prospect's entries cannot show: an
-- update or a delete of a history row (the owner's or a superuser's hand,
-- or the cascade of a deleted prospect), as for ticket_messages (V4), whose
-- rows also carry their author and time and are audited on delete only.
create or replace trigger bizos_audit after update or delete on prospect_stage_history
  for each row execute function bizos.audit_trigger('tenant_id', 'history_id');

comment on table prospect_stage_history is 'Every stage a prospect entered, from whom and when: written by the trigger record_stage_change only. Audited on update and delete (V39); its inserts are in the audit entries of the prospect changes that write them.';
