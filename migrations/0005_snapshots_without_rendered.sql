-- Rendered Secret data is never stored (issue #11 item 5). Machine version 2 keeps the rendered
-- objects out of the actor's snapshot: it holds a plan handle instead. A version 1 snapshot
-- taken in the middle of an apply still carries the objects — Secrets included — in
-- `context.work.rendered` and in the in-flight apply's input. keelson converts such a snapshot
-- when it restores the actor, but one that no process restores (or a copy of this database
-- made before) would keep them: drop them here. The restored apply finds no plan and renders
-- again from the same inputs, so nothing the actor needs is lost.
update deployment_snapshots
set snapshot = (snapshot #- '{context,work,rendered}') #- '{children,apply,snapshot,input,objects}'
where machine_version = '1'
  and (snapshot #> '{context,work,rendered}' is not null
       or snapshot #> '{children,apply,snapshot,input,objects}' is not null);
