-- E-mail (migration V23): templates, rendering, the outbox's enqueue and
-- the worker's delivery calls.
--
-- Rendering happens here, at enqueue, in the transaction that queues the
-- e-mail: the outbox row is then exactly what is sent (an audit of what a
-- customer was told, unchanged by later edits of a template or of the
-- tenant's name), a bad variable is refused to the caller who can fix it
-- instead of failing later in the worker, and the worker only moves bytes.
--
-- Who calls what:
--   email_enqueue        users (bizos_authenticated), in their request's
--                        transaction; needs the template's permission
--   email_for_delivery, email_mark_sent, email_mark_failed
--                        the worker's login (bizos_worker) only
--
-- Placeholders are {{name}} (spaces inside the braces allowed): the
-- template's variables and the built-in {{tenant_name}}. Values are
-- inserted as they are into the subject and the plain-text part and
-- HTML-escaped into the HTML part; a value is never read for placeholders
-- itself (one pass).

-- The pattern of one placeholder.
create or replace function email_placeholder_pattern() returns text
language sql immutable parallel safe
as $$ select '\{\{\s*([a-z][a-z0-9_]*)\s*\}\}' $$;
select pin_search_path('email_placeholder_pattern()');
revoke execute on function email_placeholder_pattern() from public;
grant execute on function email_placeholder_pattern() to bizos_authenticated;
comment on function email_placeholder_pattern() is 'The regular expression of a {{placeholder}} of an e-mail template.';

-- The names a template text uses, or NULL when it has a stray {{ or }}.
create or replace function email_template_placeholders(body text) returns text[]
language sql immutable parallel safe
as $$
  select case
           when regexp_replace(coalesce(body, ''), email_placeholder_pattern(), '', 'g') ~ '\{\{|\}\}' then null
           else coalesce((select array_agg(distinct m[1] order by m[1])
                            from regexp_matches(coalesce(body, ''), email_placeholder_pattern(), 'g') m),
                         '{}')
         end
$$;
select pin_search_path('email_template_placeholders(text)');
revoke execute on function email_template_placeholders(text) from public;
-- The check of the templates runs as whoever writes one (a super_admin).
grant execute on function email_template_placeholders(text) to bizos_authenticated;
comment on function email_template_placeholders(text) is
  'The placeholder names of an e-mail template text, sorted; NULL when the text has a {{ or }} that is no placeholder.';

-- Text safe inside HTML elements and quoted attributes.
create or replace function email_html_escape(value text) returns text
language sql immutable strict parallel safe
as $$
  select replace(replace(replace(replace(replace(value,
           '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
select pin_search_path('email_html_escape(text)');
revoke execute on function email_html_escape(text) from public;
comment on function email_html_escape(text) is 'Escapes & < > " and '' for HTML text and quoted attributes.';

-- body with every {{name}} replaced by vars->>name (HTML-escaped when html),
-- in one pass. A placeholder without a value raises (email_enqueue checks
-- the variables first, so this is a defence, not the check).
create or replace function email_render(body text, vars jsonb, html boolean) returns text
language plpgsql immutable parallel safe
as $$
declare
  v_out text := '';
  v_rest text := body;
  v_at integer;
  v_match text;
  v_name text;
  v_value text;
begin
  loop
    v_at := regexp_instr(v_rest, email_placeholder_pattern());
    exit when v_at = 0;
    v_match := regexp_substr(v_rest, email_placeholder_pattern());
    v_name := (regexp_match(v_match, email_placeholder_pattern()))[1];
    if not (vars ? v_name) or jsonb_typeof(vars -> v_name) not in ('string', 'number') then
      raise exception using errcode = 'P0001', column = 'vars',
        message = format('vars.%s: is required by the template', v_name);
    end if;
    v_value := vars ->> v_name;
    v_out := v_out || substr(v_rest, 1, v_at - 1)
                   || case when html then email_html_escape(v_value) else v_value end;
    v_rest := substr(v_rest, v_at + length(v_match));
  end loop;
  return v_out || v_rest;
end
$$;
select pin_search_path('email_render(text, jsonb, boolean)');
revoke execute on function email_render(text, jsonb, boolean) from public;
comment on function email_render(text, jsonb, boolean) is
  'Replaces the {{placeholders}} of an e-mail template text by the values of vars (HTML-escaped when html), in one pass.';

-- Trigger of email_templates and email_template_overrides: every
-- placeholder of the subject and both bodies is {{tenant_name}} or one of
-- the template's variables, and no {{ or }} is left over.
create or replace function email_templates_check() returns trigger
language plpgsql
as $$
declare
  v_variables text[];
  v_part text;
  v_names text[];
  v_bad text;
  v_template text := new.template;
begin
  -- The table is named by the trigger's argument: on Citus, tg_table_name
  -- is the shard's name (email_templates_102024).
  if tg_argv[0] = 'email_templates' then
    v_variables := new.variables;
  else
    select t.variables into v_variables from email_templates t where t.template = new.template;
  end if;
  v_variables := array_prepend('tenant_name', coalesce(v_variables, '{}'));
  foreach v_part in array array['subject', 'text_body', 'html_body'] loop
    v_names := email_template_placeholders(to_jsonb(new) ->> v_part);
    if v_names is null then
      raise exception using errcode = 'P0001', column = v_part,
        message = format('%s: has a {{ or }} that is no placeholder (placeholders are {{name}})', v_part);
    end if;
    select n into v_bad from unnest(v_names) n where not (n = any (v_variables)) order by n limit 1;
    if v_bad is not null then
      raise exception using errcode = 'P0001', column = v_part,
        message = format('%s: {{%s}} is not a variable of %s (variables: %s)',
                         v_part, v_bad, v_template, array_to_string(v_variables, ', '));
    end if;
  end loop;
  return new;
end
$$;
select pin_search_path('email_templates_check()');
revoke execute on function email_templates_check() from public;
comment on function email_templates_check() is
  'Trigger of email_templates and email_template_overrides: placeholders must be {{tenant_name}} or the template''s variables.';
create or replace trigger email_templates_check before insert or update on email_templates
  for each row execute function email_templates_check('email_templates');
create or replace trigger email_template_overrides_check before insert or update on email_template_overrides
  for each row execute function email_templates_check('email_template_overrides');

-- One address of a list, checked (email_address) and trimmed; the error
-- names the element (`to[2]`).
create or replace function email_address_of(address text, field text) returns email_address
language plpgsql immutable
as $$
begin
  if address is null or btrim(address) = '' then
    raise exception using errcode = 'P0001', column = field, message = format('%s: is required', field);
  end if;
  return btrim(address)::email_address;
exception when check_violation then
  raise exception using errcode = 'P0001', column = field,
    message = format('%s: %s is not an e-mail address (local@domain.example)', field, left(address, 100));
end
$$;
select pin_search_path('email_address_of(text, text)');
revoke execute on function email_address_of(text, text) from public;
comment on function email_address_of(text, text) is
  'The address, trimmed, as an email_address; P0001 naming field when it is not one.';

-- The catalogue's template of that name (trimmed, lower case), or an
-- error naming `template` and listing the templates.
create or replace function email_template_of(template text) returns email_templates
language plpgsql stable security definer
as $$
declare
  v_tpl email_templates;
begin
  if email_template_of.template is null then
    raise exception using errcode = 'P0001', column = 'template', message = 'template: is required';
  end if;
  select * into v_tpl from email_templates t where t.template = lower(btrim(email_template_of.template));
  if not found then
    raise exception using errcode = 'P0001', column = 'template',
      message = format('template: no e-mail template %s (templates: %s)', left(email_template_of.template, 60),
                       (select string_agg(t.template, ', ' order by t.template) from email_templates t));
  end if;
  return v_tpl;
end
$$;
select pin_search_path('email_template_of(text)');
revoke execute on function email_template_of(text) from public;
comment on function email_template_of(text) is
  'Internal: the e-mail template of a name, or an error naming the field and listing the templates.';

-- email_queue(tenant, created_by, template, to, vars, cc) -> email_id: the
-- checks, rendering and insert of an e-mail with its email.send job, for
-- a tenant, with no permission check: email_enqueue (a user, after the
-- template's permission) and system work of the database (the worker's
-- digest) call it; nobody else may.
create or replace function email_queue(tenant uuid, created_by uuid, template text, "to" text[],
                                       vars jsonb, cc text[])
returns uuid
language plpgsql
security definer
as $$
declare
  v_tenant uuid := email_queue.tenant;
  v_tpl email_templates;
  v_over email_template_overrides;
  v_sender tenant_mail_settings;
  v_tenant_name text;
  v_key text;
  v_value jsonb;
  v_vars jsonb;
  v_to email_address[] := '{}';
  v_cc email_address[] := '{}';
  v_id uuid := gen_random_uuid();
  v_job uuid;
begin
  v_tpl := email_template_of(email_queue.template);

  -- to, cc
  if "to" is null or cardinality("to") = 0 then
    raise exception using errcode = 'P0001', column = 'to', message = 'to: at least one address is required';
  end if;
  if cardinality("to") > 50 then
    raise exception using errcode = 'P0001', column = 'to', message = 'to: at most 50 addresses';
  end if;
  for i in 1 .. cardinality("to") loop
    v_to := v_to || email_address_of("to"[i], format('to[%s]', i - 1));
  end loop;
  if cardinality(coalesce(cc, '{}')) > 50 then
    raise exception using errcode = 'P0001', column = 'cc', message = 'cc: at most 50 addresses';
  end if;
  for i in 1 .. cardinality(coalesce(cc, '{}')) loop
    v_cc := v_cc || email_address_of(cc[i], format('cc[%s]', i - 1));
  end loop;

  -- vars: exactly the template's variables, each a non-blank string or a number
  v_vars := coalesce(vars, '{}');
  if jsonb_typeof(v_vars) <> 'object' then
    raise exception using errcode = 'P0001', column = 'vars', message = 'vars: must be a JSON object';
  end if;
  for v_key, v_value in select e.key, e.value from jsonb_each(v_vars) e order by e.key loop
    if not (v_key = any (v_tpl.variables)) then
      raise exception using errcode = 'P0001', column = 'vars.' || left(v_key, 40),
        message = format('vars.%s: unknown variable of %s (allowed: %s)', left(v_key, 40), v_tpl.template,
                         array_to_string(v_tpl.variables, ', '));
    end if;
    if jsonb_typeof(v_value) not in ('string', 'number') then
      raise exception using errcode = 'P0001', column = 'vars.' || v_key,
        message = format('vars.%s: must be a string or a number', v_key);
    end if;
    if btrim(v_value #>> '{}') = '' or length(v_value #>> '{}') > 2000 then
      raise exception using errcode = 'P0001', column = 'vars.' || v_key,
        message = format('vars.%s: must be 1 to 2000 characters', v_key);
    end if;
  end loop;
  foreach v_key in array v_tpl.variables loop
    if not (v_vars ? v_key) then
      raise exception using errcode = 'P0001', column = 'vars.' || v_key,
        message = format('vars.%s: is required by %s', v_key, v_tpl.template);
    end if;
  end loop;

  select t.name into v_tenant_name from tenants t where t.tenant_id = v_tenant;
  select * into v_over from email_template_overrides o
   where o.tenant_id = v_tenant and o.template = v_tpl.template;
  select * into v_sender from tenant_mail_settings s where s.tenant_id = v_tenant;
  v_vars := v_vars || jsonb_build_object('tenant_name', v_tenant_name);

  v_job := job_insert(v_tenant, email_queue.created_by, 'email.send', jsonb_build_object('email_id', v_id),
                      null, 0, null);
  insert into emails (tenant_id, email_id, template, from_address, from_name, reply_to,
                      to_addresses, cc_addresses, subject, text_body, html_body, job_id, request_id, created_by)
  values (v_tenant, v_id, v_tpl.template, v_sender.from_address,
          left(btrim(regexp_replace(coalesce(v_sender.from_name, v_tenant_name), '[[:cntrl:]]+', ' ', 'g')), 200),
          v_sender.reply_to, v_to, v_cc,
          -- One line: a value with line breaks cannot add header lines.
          left(btrim(regexp_replace(email_render(coalesce(v_over.subject, v_tpl.subject), v_vars, false),
                                    '[[:space:][:cntrl:]]+', ' ', 'g')), 998),
          email_render(coalesce(v_over.text_body, v_tpl.text_body), v_vars, false),
          email_render(coalesce(v_over.html_body, v_tpl.html_body), v_vars, true),
          v_job, left(nullif(current_setting('request.id', true), ''), 200), email_queue.created_by);
  return v_id;
end
$$;
select pin_search_path('email_queue(uuid, uuid, text, text[], jsonb, text[])');
revoke execute on function email_queue(uuid, uuid, text, text[], jsonb, text[]) from public;
comment on function email_queue(uuid, uuid, text, text[], jsonb, text[]) is
  'Internal: checks the addresses and variables, renders the template (the tenant''s wording if any) and queues the e-mail with its email.send job for a tenant; no permission check (callers: email_enqueue, system work).';

-- email_enqueue(template, to, vars, cc) -> email_id: renders the template
-- with the tenant's name and vars and queues the e-mail with its
-- email.send job, in the caller's transaction (both exist only if it
-- commits). SECURITY DEFINER: users cannot write emails directly (they
-- would send any text through the tenant's sender); here they send only a
-- template whose permission they have, to addresses that are checked
-- (email_queue).
create or replace function email_enqueue(template text, "to" text[], vars jsonb default '{}',
                                         cc text[] default '{}')
returns uuid
language plpgsql
security definer
as $$
declare
  v_tpl email_templates;
begin
  if bizos.uid() is null or bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  v_tpl := email_template_of(email_enqueue.template);
  perform require_permission(v_tpl.permission);
  return email_queue(bizos.tenant_id(), bizos.uid(), v_tpl.template, "to", vars, cc);
end
$$;
select pin_search_path('email_enqueue(text, text[], jsonb, text[])');
revoke execute on function email_enqueue(text, text[], jsonb, text[]) from public;
grant execute on function email_enqueue(text, text[], jsonb, text[]) to bizos_authenticated;
comment on function email_enqueue(text, text[], jsonb, text[]) is
  'Queues an e-mail of the caller: renders the template (the tenant''s wording if any) with the tenant''s name and vars, checks the addresses, and enqueues its email.send job, in the caller''s transaction; returns the email_id.';

-- The worker's view of one e-mail, locked for its delivery (FOR UPDATE:
-- a second delivery of the same e-mail waits, then finds it sent).
create or replace function email_for_delivery(tenant_id uuid, email_id uuid)
returns table (from_address text, from_name text, reply_to text, to_addresses text[], cc_addresses text[],
               subject text, text_body text, html_body text, sent_at timestamptz, message_id text)
language plpgsql
security definer
as $$
begin
  return query
    select e.from_address::text, e.from_name, e.reply_to::text, e.to_addresses::text[], e.cc_addresses::text[],
           e.subject, e.text_body, e.html_body, e.sent_at, e.message_id
      from emails e
     where e.tenant_id = email_for_delivery.tenant_id and e.email_id = email_for_delivery.email_id
       for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'email_id',
      message = format('email_id: no e-mail %s of tenant %s', email_id, tenant_id);
  end if;
end
$$;
select pin_search_path('email_for_delivery(uuid, uuid)');
revoke execute on function email_for_delivery(uuid, uuid) from public;
grant execute on function email_for_delivery(uuid, uuid) to bizos_worker;
comment on function email_for_delivery(uuid, uuid) is
  'Worker: one e-mail of the outbox, locked (FOR UPDATE) until the delivering transaction ends.';

create or replace function email_mark_sent(tenant_id uuid, email_id uuid, message_id text)
returns void
language plpgsql
security definer
as $$
begin
  update emails e
     set sent_at = now(), message_id = email_mark_sent.message_id, failed_at = null
   where e.tenant_id = email_mark_sent.tenant_id and e.email_id = email_mark_sent.email_id
     and e.sent_at is null;
end
$$;
select pin_search_path('email_mark_sent(uuid, uuid, text)');
revoke execute on function email_mark_sent(uuid, uuid, text) from public;
grant execute on function email_mark_sent(uuid, uuid, text) to bizos_worker;
comment on function email_mark_sent(uuid, uuid, text) is
  'Worker: records that the SMTP server accepted the e-mail (once; a sent e-mail stays as it was).';

create or replace function email_mark_failed(tenant_id uuid, email_id uuid, error text, permanent boolean)
returns void
language plpgsql
security definer
as $$
declare
  v_now timestamptz := now();  -- (Citus: no STABLE function inside CASE in an UPDATE)
begin
  update emails e
     set attempts = e.attempts + 1,
         last_error = left(coalesce(error, 'unknown error'), 4000),
         failed_at = case when permanent then v_now else e.failed_at end
   where e.tenant_id = email_mark_failed.tenant_id and e.email_id = email_mark_failed.email_id
     and e.sent_at is null;
end
$$;
select pin_search_path('email_mark_failed(uuid, uuid, text, boolean)');
revoke execute on function email_mark_failed(uuid, uuid, text, boolean) from public;
grant execute on function email_mark_failed(uuid, uuid, text, boolean) to bizos_worker;
comment on function email_mark_failed(uuid, uuid, text, boolean) is
  'Worker: records a failed delivery attempt and its error; permanent ones set failed_at.';

-- The email.send job of the e-mail was dead-lettered after its last
-- retryable failure: the e-mail is failed too (`bizos jobs retry` runs the
-- job again; a delivery that then succeeds clears failed_at).
create or replace function email_mark_dead(tenant_id uuid, email_id uuid)
returns void
language plpgsql
security definer
as $$
declare
  v_now timestamptz := now();  -- (Citus: no STABLE function inside COALESCE in an UPDATE)
begin
  update emails e
     set failed_at = coalesce(e.failed_at, v_now)
   where e.tenant_id = email_mark_dead.tenant_id and e.email_id = email_mark_dead.email_id
     and e.sent_at is null;
end
$$;
select pin_search_path('email_mark_dead(uuid, uuid)');
revoke execute on function email_mark_dead(uuid, uuid) from public;
grant execute on function email_mark_dead(uuid, uuid) to bizos_worker;
comment on function email_mark_dead(uuid, uuid) is
  'Worker: the e-mail''s job ran out of attempts; the e-mail is failed (until a retried job sends it).';
