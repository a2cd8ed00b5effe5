// The RBAC authorizer: which rules apply to a user in a namespace (ClusterRoleBindings, then the
// namespace's RoleBindings, each resolving its Role or ClusterRole), and whether one allows the
// request. Mirrors k8s.io/kubernetes/pkg/registry/rbac/validation/rule.go, including the reason
// strings: "RBAC: allowed by …" on success, and the resolution errors (a binding to a role that
// does not exist) appended to a refusal.
//
// It reads its own index of the four kinds, kept current by the store's change events, instead of
// listing the store on every request (a list clones and sorts every object): a real API server
// does the same with informer caches. Store events are synchronous, so the index never lags.
import { RESOURCE_TYPES, type ResourceType } from '../resources.ts';
import type { KObject, Store, StoreEvent } from '../store.ts';
import { MASTERS, serviceAccountUser, type UserInfo } from './authenticator.ts';
import { ruleAllows, type Attributes, type PolicyRule } from './policy.ts';

interface Subject {
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
}

interface Binding {
  readonly name: string;
  readonly namespace: string;
  readonly roleRef: { readonly kind?: string; readonly name?: string };
  readonly subjects: readonly Subject[];
}

export interface Decision {
  readonly allowed: boolean;
  /** Why: the binding that allowed it, or the resolution errors behind a refusal ("" if none). */
  readonly reason: string;
}

export interface RulesResult {
  readonly rules: PolicyRule[];
  readonly errors: string[];
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** Sees one applicable rule and a lazy description of where it came from; false stops the walk. */
type Visitor = (source: () => string, rule: PolicyRule) => boolean;

function rbacType(kind: string): ResourceType {
  return RESOURCE_TYPES.find((t) => t.group === RBAC_GROUP && t.kind === kind)!;
}

function appliesTo(user: UserInfo, subject: Subject, bindingNamespace: string): boolean {
  switch (subject.kind) {
    case 'User':
      return user.name === subject.name;
    case 'Group':
      return !!subject.name && user.groups.includes(subject.name);
    case 'ServiceAccount': {
      // A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
      const ns = subject.namespace || bindingNamespace;
      return !!ns && !!subject.name && user.name === serviceAccountUser(ns, subject.name);
    }
    default:
      return false;
  }
}

function describeSubject(subject: Subject, bindingNamespace: string): string {
  if (subject.kind === 'ServiceAccount') return `${subject.kind} ${JSON.stringify(`${subject.name}/${subject.namespace || bindingNamespace}`)}`;
  return `${subject.kind} ${JSON.stringify(subject.name)}`;
}

/** utilerrors.NewAggregate(errs).Error(): one message as is, several deduplicated in brackets. */
function aggregate(errors: string[]): string {
  const unique = [...new Set(errors)];
  return unique.length === 1 ? unique[0]! : `[${unique.join(', ')}]`;
}

export class RbacAuthorizer {
  private readonly types = {
    role: rbacType('Role'),
    clusterRole: rbacType('ClusterRole'),
    roleBinding: rbacType('RoleBinding'),
    clusterRoleBinding: rbacType('ClusterRoleBinding'),
  };
  private readonly roles = new Map<string, readonly PolicyRule[]>(); // "ns/name"
  private readonly clusterRoles = new Map<string, readonly PolicyRule[]>();
  private readonly roleBindings = new Map<string, Map<string, Binding>>(); // ns → name → binding
  private readonly clusterRoleBindings = new Map<string, Binding>();
  private readonly unsubscribe: () => void;

  constructor(store: Store) {
    for (const type of Object.values(this.types)) for (const o of store.list(type)) this.index(type, o, false);
    this.unsubscribe = store.subscribe((event) => this.onEvent(event));
  }

  close(): void {
    this.unsubscribe();
  }

  private onEvent(event: StoreEvent): void {
    const t = event.resource;
    if (t !== this.types.role && t !== this.types.clusterRole && t !== this.types.roleBinding && t !== this.types.clusterRoleBinding) return;
    this.index(t, event.object, event.type === 'DELETED');
  }

  private index(type: ResourceType, o: KObject, deleted: boolean): void {
    const name = o.metadata.name;
    const ns = o.metadata.namespace ?? '';
    if (type === this.types.clusterRole || type === this.types.role) {
      const map = type === this.types.role ? this.roles : this.clusterRoles;
      const key = type === this.types.role ? `${ns}/${name}` : name;
      if (deleted) map.delete(key);
      else map.set(key, (o.rules ?? []) as PolicyRule[]);
      return;
    }
    const binding: Binding = { name, namespace: ns, roleRef: (o.roleRef ?? {}) as Binding['roleRef'], subjects: (o.subjects ?? []) as Subject[] };
    if (type === this.types.clusterRoleBinding) {
      if (deleted) this.clusterRoleBindings.delete(name);
      else this.clusterRoleBindings.set(name, binding);
      return;
    }
    let inNs = this.roleBindings.get(ns);
    if (deleted) {
      inNs?.delete(name);
      if (inNs?.size === 0) this.roleBindings.delete(ns);
      return;
    }
    if (!inNs) this.roleBindings.set(ns, (inNs = new Map()));
    inNs.set(name, binding);
  }

  private roleRules(binding: Binding): readonly PolicyRule[] | string {
    const { kind, name = '' } = binding.roleRef;
    if (kind === 'ClusterRole') return this.clusterRoles.get(name) ?? `clusterrole.${RBAC_GROUP} ${JSON.stringify(name)} not found`;
    if (kind === 'Role') return this.roles.get(`${binding.namespace}/${name}`) ?? `role.${RBAC_GROUP} ${JSON.stringify(name)} not found`;
    return `unsupported role reference kind: ${JSON.stringify(kind ?? '')}`;
  }

  /**
   * Calls `visit` for every rule that applies to `user` in `namespace` until it returns false;
   * returns the errors of bindings whose role cannot be resolved.
   */
  private visitRulesFor(user: UserInfo, namespace: string, visit: Visitor): string[] {
    const errors: string[] = [];
    if (!this.visitBindings(this.clusterRoleBindings.values(), '', user, visit, errors)) return errors;
    const inNamespace = namespace ? this.roleBindings.get(namespace) : undefined;
    if (inNamespace) this.visitBindings(inNamespace.values(), namespace, user, visit, errors);
    return errors;
  }

  /** False once the visitor asked to stop. */
  private visitBindings(bindings: Iterable<Binding>, bindingNs: string, user: UserInfo, visit: Visitor, errors: string[]): boolean {
    for (const binding of bindings) {
      const subject = binding.subjects.find((s) => appliesTo(user, s, bindingNs));
      if (!subject) continue;
      const rules = this.roleRules(binding);
      if (typeof rules === 'string') {
        errors.push(rules);
        continue;
      }
      const ref = `${binding.roleRef.kind} ${JSON.stringify(binding.roleRef.name)}`;
      const source = () =>
        bindingNs
          ? `RoleBinding ${JSON.stringify(`${binding.name}/${bindingNs}`)} of ${ref} to ${describeSubject(subject, bindingNs)}`
          : `ClusterRoleBinding ${JSON.stringify(binding.name)} of ${ref} to ${describeSubject(subject, '')}`;
      for (const rule of rules) if (!visit(source, rule)) return false;
    }
    return true;
  }

  /** The authorizer chain of a real API server: `system:masters` first, then RBAC. */
  authorize(user: UserInfo, attrs: Attributes): Decision {
    if (user.groups.includes(MASTERS)) return { allowed: true, reason: '' };
    let reason = '';
    const errors = this.visitRulesFor(user, attrs.namespace, (source, rule) => {
      if (!ruleAllows(attrs, rule)) return true;
      reason = `RBAC: allowed by ${source()}`;
      return false;
    });
    if (reason) return { allowed: true, reason };
    return { allowed: false, reason: errors.length > 0 ? `RBAC: ${aggregate(errors)}` : '' };
  }

  /** Every rule that applies to `user` in `namespace` (SelfSubjectRulesReview). */
  rulesFor(user: UserInfo, namespace: string): RulesResult {
    const rules: PolicyRule[] = [];
    const errors = this.visitRulesFor(user, namespace, (_source, rule) => {
      rules.push(rule);
      return true;
    });
    return { rules, errors: errors.length > 0 ? [aggregate(errors)] : [] };
  }
}
