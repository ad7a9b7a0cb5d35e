// Deterministic freeing of native memory (V8 cannot see it): a scope frees every tensor created
// inside it except those it returns or that were kept, like tfjs's tidy.

/** What a scope tracks: tensors, seen through the little it needs of them. */
export interface ScopedResource {
  dispose(): void;
  /** The scope that will free this resource, or null when none will. */
  owner: Set<ScopedResource> | null;
  /** Called when the resource leaves every scope alive (kept, or returned to the top level). */
  unscoped?(): void;
}

const scoped = Symbol("moco.scoped");
const stack: Set<ScopedResource>[] = [];

/** Marks a class's instances as scope-managed so that returned values can be recognised. */
export function markScoped(proto: object): void {
  Object.defineProperty(proto, scoped, { value: true });
}

function isScoped(value: unknown): value is ScopedResource {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[scoped] === true;
}

/** Called by every new tensor; true when a scope now owns it. */
export function track(resource: ScopedResource): boolean {
  // Test the length first: `stack[-1]` on an empty stack is a slow string-keyed property lookup.
  if (stack.length === 0) return false;
  const top = stack[stack.length - 1] as Set<ScopedResource>;
  top.add(resource);
  resource.owner = top;
  return true;
}

/** Called by dispose: a freed resource is no longer any scope's business. */
export function untrack(resource: ScopedResource): void {
  resource.owner?.delete(resource);
  resource.owner = null;
}

/** Exempts a tensor from every enclosing scope; the caller now owns it. */
export function keep<T extends ScopedResource>(resource: T): T {
  const wasScoped = resource.owner !== null;
  untrack(resource);
  if (wasScoped) resource.unscoped?.();
  return resource;
}

function collectReturned(value: unknown, into: Set<ScopedResource>, depth = 0): void {
  if (depth > 16 || typeof value !== "object" || value === null) return;
  if (isScoped(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectReturned(item, into, depth + 1);
  } else if (value instanceof Map) {
    for (const item of value.values()) collectReturned(item, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectReturned(item, into, depth + 1);
  }
}

function isPromiseLike(value: unknown): boolean {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/**
 * Runs `fn` and frees every tensor it created, except the tensors in its result (found in arrays,
 * Maps and plain objects) and those passed to `keep`. Returned tensors pass to the enclosing scope.
 * `fn` must be synchronous: a Promise would outlive the scope, so it is an error.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<ScopedResource>();
  stack.push(created);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    stack.pop();
    for (const resource of [...created]) resource.dispose();
    throw error;
  }
  stack.pop();
  if (isPromiseLike(result)) {
    for (const resource of [...created]) resource.dispose();
    throw new TypeError(
      "scope: the function returned a Promise; scopes are synchronous (await between scopes, not inside one)",
    );
  }
  const returned = new Set<ScopedResource>();
  collectReturned(result, returned);
  const parent = stack.length === 0 ? undefined : stack[stack.length - 1];
  for (const resource of created) {
    if (!returned.has(resource)) {
      resource.owner = null;
      resource.dispose();
    } else if (parent !== undefined) {
      parent.add(resource);
      resource.owner = parent;
    } else {
      resource.owner = null;
      resource.unscoped?.();
    }
  }
  return result;
}
