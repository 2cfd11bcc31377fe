-- Vocabularies (migration V20): one lookup table per closed set of terms;
-- this view is every term of all of them, and vocabulary_check() the one
-- way a function checks a value against one (the house error shape).

-- Every term of every vocabulary: what the BFF loads at startup (as
-- bizos_authenticated) to validate requests and to fill the OpenAPI enums.
create or replace view vocabulary with (security_invoker = true) as
  select 'app_roles'::text as vocabulary, code as term, position, description from app_roles
  union all select 'lead_channels', code, position, description from lead_channels
  union all select 'lead_statuses', code, position, description from lead_statuses
  union all select 'ticket_types', code, position, description from ticket_types
  union all select 'ticket_priorities', code, position, description from ticket_priorities
  union all select 'ticket_statuses', code, position, description from ticket_statuses
  union all select 'inquiry_statuses', code, position, description from inquiry_statuses
  union all select 'invoice_statuses', code, position, description from invoice_statuses
  union all select 'payment_methods', code, position, description from payment_methods
  union all select 'kpi_entry_sources', code, position, description from kpi_entry_sources
  union all select 'job_kinds', kind, position, description from job_kinds
  union all select 'job_statuses', code, position, description from job_statuses
  union all select 'llm_features', code, position, label from llm_features
  union all select 'kb_visibilities', code, position, description from kb_visibilities
  union all select 'kb_formats', code, position, description from kb_formats
  union all select 'kb_statuses', code, position, description from kb_statuses
  union all select 'sop_rule_kinds', code, position, description from sop_rule_kinds
  union all select 'sop_severities', code, position, description from sop_severities
  union all select 'rfm_segments', code, position, label from rfm_segments
  union all select 'rfm_channels', code, position, description from rfm_channels
  union all select 'api_scopes', code, position, description from api_scopes
  union all select 'permissions', code, position, description from permissions
  union all select 'activity_types', code, position, description from activity_types
  union all select 'webhook_event_types', code, position, description from webhook_event_types
  union all select 'webhook_delivery_statuses', code, position, description from webhook_delivery_statuses;
comment on view vocabulary is
  'Every term of every vocabulary (one lookup table each, named in the column vocabulary), in list order.';
grant select on vocabulary to bizos_authenticated;

-- What is wrong with a value of a vocabulary: NULL when it is a term (or
-- NULL), else 'must be one of a, b, c' (the terms in list order). For
-- checks that collect problems instead of raising (the import checks).
-- An unknown vocabulary is a bug of the caller: 42704.
-- (A generic plan: a custom one prunes the view to one table but is
-- planned on every call, and planning the 25 branches took 200 µs.)
create or replace function vocabulary_problem(vocabulary text, value text) returns text
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
declare
  v_terms text[];
begin
  select array_agg(v.term order by v.position) into v_terms
    from vocabulary v
   where v.vocabulary = vocabulary_problem.vocabulary;
  if v_terms is null then
    raise exception using errcode = '42704',
      message = format('there is no vocabulary %L', vocabulary_problem.vocabulary);
  end if;
  if vocabulary_problem.value is null or vocabulary_problem.value = any (v_terms) then
    return null;
  end if;
  return 'must be one of ' || array_to_string(v_terms, ', ');
end
$$;
select pin_search_path('vocabulary_problem(text, text)');
revoke execute on function vocabulary_problem(text, text) from public;
grant execute on function vocabulary_problem(text, text) to bizos_authenticated;
comment on function vocabulary_problem(text, text) is
  'NULL if the value is a term of the vocabulary (a table of the vocabulary view) or NULL; else ''must be one of ...''.';

-- The value when it is a term of the vocabulary (or NULL), else the house
-- error: P0001 '<field>: must be one of a, b, c' with COLUMN = field, which
-- the BFF sends as 422 naming the field. Fold the case first (lower() or
-- upper(), as the vocabulary stores it). An unknown vocabulary is a bug of
-- the caller: 42704.
create or replace function vocabulary_check(vocabulary text, value text, field text) returns text
language plpgsql stable
as $$
declare
  v_problem text := vocabulary_problem(vocabulary_check.vocabulary, vocabulary_check.value);
begin
  if v_problem is not null then
    raise exception using errcode = 'P0001', column = field, message = field || ': ' || v_problem;
  end if;
  return vocabulary_check.value;
end
$$;
select pin_search_path('vocabulary_check(text, text, text)');
revoke execute on function vocabulary_check(text, text, text) from public;
grant execute on function vocabulary_check(text, text, text) to bizos_authenticated;
comment on function vocabulary_check(text, text, text) is
  'The value if it is a term of the vocabulary (a table of the vocabulary view) or NULL; else P0001 "<field>: must be one of ..." with COLUMN = field.';
