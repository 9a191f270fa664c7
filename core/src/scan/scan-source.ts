import type { SyntaxNode } from '@lezer/common';
import { parser } from '@lezer/python';
import { NOTHING, OTHER, OTHER_ONLY, Scope, join } from './flow';
import type { Values } from './flow';
import { importBindings } from './imports';
import { LineIndex } from './positions';
import type { FminCall } from './types';

/** The values a callee must be able to hold to be hyperopt's fmin. */
const FMIN = ['hyperopt.fmin', 'hyperopt.fmin.fmin'];

const COMPREHENSIONS = new Set([
  'ArrayComprehensionExpression',
  'SetComprehensionExpression',
  'DictionaryComprehensionExpression',
  'ComprehensionExpression',
]);
const TARGET_GROUPS = new Set(['TupleExpression', 'ArrayExpression', 'ParenthesizedExpression']);

/**
 * Finds every call of hyperopt's `fmin` in Python source.
 *
 * The source is parsed (@lezer/python, error tolerant: a file with syntax errors gives the calls
 * in the parts that parse) and names are resolved through imports, aliases and Python's scopes,
 * so `fmin` in strings and comments, a function of one's own named fmin, `scipy.optimize.fmin`
 * or `obj.fmin(...)` are not reported. Calls come in source order. Never throws on any input.
 */
export function scanSource(text: string): FminCall[] {
  // Every match needs an import of hyperopt and the name fmin written somewhere (in the import
  // or as an attribute), so most files are done without parsing.
  if (!text.includes('hyperopt') || !text.includes('fmin')) return [];
  const walker = new Walker(text);
  walker.run();
  return walker.results();
}

interface Found {
  call: SyntaxNode;
  callee: SyntaxNode;
  inMainGuard: boolean;
}

interface Deferred {
  body: SyntaxNode;
  scope: Scope;
  inMainGuard: boolean;
}

class Walker {
  private readonly found = new Map<number, Found>();
  /** Function bodies run later than the code around them: walked once their scope is done. */
  private readonly deferred: Deferred[] = [];

  constructor(private readonly text: string) {}

  run(): void {
    const module = new Scope('module', null);
    try {
      const tree = parser.parse(this.text);
      this.children(tree.topNode, module, false);
      for (let next = this.deferred.shift(); next; next = this.deferred.shift()) {
        this.children(next.body, next.scope, next.inMainGuard);
      }
    } catch (error) {
      // Absurdly deep nesting can exhaust the stack (in the parser or here): keep what was found.
      if (!(error instanceof RangeError)) throw error;
    }
  }

  results(): FminCall[] {
    if (this.found.size === 0) return [];
    const lines = new LineIndex(this.text);
    return [...this.found.values()]
      .sort((a, b) => a.call.from - b.call.from)
      .map(({ call, callee, inMainGuard }) => {
        const start = lines.position(call.from);
        const end = lines.position(call.to);
        return {
          line: start.line,
          column: start.column,
          endLine: end.line,
          endColumn: end.column,
          from: call.from,
          to: call.to,
          callee: this.src(callee),
          inMainGuard,
        };
      });
  }

  private src(node: SyntaxNode): string {
    return this.text.slice(node.from, node.to);
  }

  private children(node: SyntaxNode, scope: Scope, main: boolean): void {
    for (let child = node.firstChild; child; child = child.nextSibling) this.visit(child, scope, main);
  }

  private visit(node: SyntaxNode, scope: Scope, main: boolean): void {
    switch (node.name) {
      case 'ImportStatement':
        for (const { name, values } of importBindings(node, this.text)) scope.bind(name, values);
        return;
      case 'CallExpression':
        this.call(node, scope, main);
        return;
      case 'FunctionDefinition':
        this.functionDefinition(node, scope, main);
        return;
      case 'LambdaExpression':
        this.lambda(node, scope, main);
        return;
      case 'ClassDefinition':
        this.classDefinition(node, scope, main);
        return;
      case 'AssignStatement':
        this.assign(node, scope, main);
        return;
      case 'UpdateStatement':
        this.update(node, scope, main);
        return;
      case 'NamedExpression':
        this.namedExpression(node, scope, main);
        return;
      case 'ForStatement':
        this.forStatement(node, scope, main);
        return;
      case 'WhileStatement':
        this.whileStatement(node, scope, main);
        return;
      case 'IfStatement':
        this.ifStatement(node, scope, main);
        return;
      case 'TryStatement':
        this.tryStatement(node, scope, main);
        return;
      case 'WithStatement':
        this.withStatement(node, scope, main);
        return;
      case 'MatchStatement':
        this.matchStatement(node, scope, main);
        return;
      case 'DeleteStatement':
        for (let child = node.firstChild; child; child = child.nextSibling) {
          if (child.name === 'VariableName') scope.bind(this.src(child), NOTHING);
          else this.visit(child, scope, main);
        }
        return;
      case 'ScopeStatement':
      case 'String':
      case 'Comment':
        return;
      default:
        if (COMPREHENSIONS.has(node.name)) this.comprehension(node, scope, main);
        else this.children(node, scope, main);
    }
  }

  // --- names and values -----------------------------------------------------------------------

  /** What an expression evaluates to when it is a name or a chain of attributes on one. */
  private resolve(node: SyntaxNode, scope: Scope): Values {
    switch (node.name) {
      case 'VariableName':
        return scope.lookup(this.src(node));
      case 'MemberExpression': {
        const object = node.firstChild;
        const dot = object?.nextSibling;
        const property = dot?.nextSibling;
        if (!object || dot?.name !== '.' || property?.name !== 'PropertyName') return NOTHING;
        const base = this.resolve(object, scope);
        if (base.size === 0) return NOTHING;
        const name = this.src(property);
        const out = new Set<string>();
        for (const path of base) if (path !== OTHER) out.add(`${path}.${name}`);
        return out;
      }
      case 'ParenthesizedExpression': {
        const inner = node.firstChild?.nextSibling;
        return inner && inner.nextSibling?.name === ')' ? this.resolve(inner, scope) : NOTHING;
      }
      default:
        return NOTHING;
    }
  }

  /** The value an assignment gives its target: an alias when the right side is a (dotted) name. */
  private valueOf(nodes: SyntaxNode[], scope: Scope): Values {
    const [only] = nodes;
    if (nodes.length !== 1 || !only) return OTHER_ONLY;
    const values = this.resolve(only, scope);
    return values.size === 0 ? OTHER_ONLY : values;
  }

  /** Binds the names of an assignment target (`a`, `a, *b`, `[a, (b, c)]`). */
  private bindTarget(node: SyntaxNode, scope: Scope, values: Values, main: boolean): void {
    if (node.name === 'VariableName') {
      scope.bind(this.src(node), values);
    } else if (TARGET_GROUPS.has(node.name)) {
      for (let child = node.firstChild; child; child = child.nextSibling) {
        this.bindTarget(child, scope, OTHER_ONLY, main);
      }
    } else if (node.name === 'MemberExpression' || node.name === 'CallExpression') {
      this.visit(node, scope, main);
    }
  }

  // --- calls ----------------------------------------------------------------------------------

  private call(node: SyntaxNode, scope: Scope, main: boolean): void {
    const callee = node.firstChild;
    if (callee && !this.found.has(node.from)) {
      const values = this.resolve(callee, scope);
      if (FMIN.some((path) => values.has(path))) {
        this.found.set(node.from, { call: node, callee, inMainGuard: main });
      }
    }
    this.children(node, scope, main);
  }

  // --- scopes ---------------------------------------------------------------------------------

  private functionDefinition(node: SyntaxNode, scope: Scope, main: boolean): void {
    const inner = new Scope('function', scope);
    for (let child = node.firstChild; child; child = child.nextSibling) {
      switch (child.name) {
        case 'VariableName':
          scope.bind(this.src(child), OTHER_ONLY);
          break;
        case 'ParamList':
          this.params(child, scope, inner, main);
          break;
        case 'Body':
          this.deferred.push({ body: child, scope: inner, inMainGuard: main });
          break;
        default:
          this.visit(child, scope, main);
      }
    }
  }

  private lambda(node: SyntaxNode, scope: Scope, main: boolean): void {
    const inner = new Scope('function', scope);
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'ParamList') this.params(child, scope, inner, main);
      else this.visit(child, inner, main);
    }
  }

  /** Parameter names bind in the function; defaults and annotations run in the enclosing scope. */
  private params(node: SyntaxNode, outer: Scope, inner: Scope, main: boolean): void {
    let isDefault = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'AssignOp') {
        isDefault = true;
      } else if (isDefault) {
        this.visit(child, outer, main);
        isDefault = false;
      } else if (child.name === 'VariableName') {
        inner.bind(this.src(child), OTHER_ONLY);
      } else {
        this.visit(child, outer, main);
      }
    }
  }

  private classDefinition(node: SyntaxNode, scope: Scope, main: boolean): void {
    let name: string | undefined;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'VariableName' && name === undefined) name = this.src(child);
      else if (child.name === 'Body') this.children(child, new Scope('class', scope), main);
      else this.visit(child, scope, main);
    }
    if (name !== undefined) scope.bind(name, OTHER_ONLY);
  }

  /** `[elt for x in xs if c]`: the loop variables belong to the comprehension's own scope. */
  private comprehension(node: SyntaxNode, scope: Scope, main: boolean): void {
    const inner = new Scope('comprehension', scope);
    const targets = new Set<number>();
    let inTarget = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'for') inTarget = true;
      else if (child.name === 'in') inTarget = false;
      else if (inTarget) {
        targets.add(child.from);
        this.bindTarget(child, inner, OTHER_ONLY, main);
      }
    }
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (!targets.has(child.from)) this.visit(child, inner, main);
    }
  }

  // --- bindings -------------------------------------------------------------------------------

  private assign(node: SyntaxNode, scope: Scope, main: boolean): void {
    const parts: SyntaxNode[] = [];
    for (let child = node.firstChild; child; child = child.nextSibling) parts.push(child);
    const lastOp = parts.map((p) => p.name).lastIndexOf('AssignOp');
    if (lastOp < 0) {
      // An annotation alone (`x: int`) binds nothing.
      this.children(node, scope, main);
      return;
    }
    const value = parts.slice(lastOp + 1);
    for (const part of value) this.visit(part, scope, main);
    const values = this.valueOf(value, scope);

    let target: SyntaxNode[] = [];
    const bindTargets = (): void => {
      const names = target.filter((t) => t.name !== 'TypeDef' && t.name !== ',' && t.name !== '*');
      const [only] = names;
      const isTuple = target.some((t) => t.name === ',');
      if (only && names.length === 1 && !isTuple) this.bindTarget(only, scope, values, main);
      else for (const t of names) this.bindTarget(t, scope, OTHER_ONLY, main);
      for (const t of target) if (t.name === 'TypeDef') this.visit(t, scope, main);
      target = [];
    };
    for (const part of parts.slice(0, lastOp + 1)) {
      if (part.name === 'AssignOp') bindTargets();
      else target.push(part);
    }
  }

  private update(node: SyntaxNode, scope: Scope, main: boolean): void {
    const target = node.firstChild;
    for (let child = target?.nextSibling ?? null; child; child = child.nextSibling) this.visit(child, scope, main);
    if (target) this.bindTarget(target, scope, OTHER_ONLY, main);
  }

  private namedExpression(node: SyntaxNode, scope: Scope, main: boolean): void {
    const target = node.firstChild;
    const value: SyntaxNode[] = [];
    for (let child = target?.nextSibling?.nextSibling ?? null; child; child = child.nextSibling) {
      value.push(child);
      this.visit(child, scope, main);
    }
    // `:=` inside a comprehension binds in the scope that contains it.
    let owner = scope;
    while (owner.kind === 'comprehension' && owner.parent) owner = owner.parent;
    if (target?.name === 'VariableName') owner.bind(this.src(target), this.valueOf(value, scope));
  }

  // --- control flow ---------------------------------------------------------------------------

  /** A loop body may run zero or more times. */
  private loopBody(body: SyntaxNode, scope: Scope, main: boolean): void {
    const before = scope.state;
    scope.state = new Map(before);
    this.children(body, scope, main);
    scope.state = join([before, scope.state]);
  }

  private forStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    let section: 'head' | 'target' | 'iterable' | 'body' = 'head';
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'for') section = 'target';
      else if (child.name === 'in' && section === 'target') section = 'iterable';
      else if (child.name === 'Body') {
        if (section !== 'body') this.loopBody(child, scope, main);
        else this.children(child, scope, main); // the else clause
        section = 'body';
      } else if (section === 'target') this.bindTarget(child, scope, OTHER_ONLY, main);
      else this.visit(child, scope, main);
    }
  }

  private whileStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    let seenBody = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'Body') {
        if (seenBody) this.children(child, scope, main);
        else this.loopBody(child, scope, main);
        seenBody = true;
      } else {
        this.visit(child, scope, main);
      }
    }
  }

  private ifStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    const fallThrough = scope.state;
    const outcomes = [];
    let guard = false;
    let sawElse = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'if' || child.name === 'elif') {
        guard = false;
      } else if (child.name === 'else') {
        sawElse = true;
      } else if (child.name === 'Body') {
        scope.state = new Map(fallThrough);
        this.children(child, scope, main || guard);
        outcomes.push(scope.state);
        scope.state = fallThrough;
        guard = false;
      } else {
        // A condition: it runs on the path where the earlier conditions were false.
        this.visit(child, scope, main);
        guard = this.isMainGuard(child);
      }
    }
    if (!sawElse) outcomes.push(fallThrough);
    scope.state = join(outcomes);
  }

  /** `__name__ == "__main__"`, either way round. */
  private isMainGuard(node: SyntaxNode): boolean {
    if (node.name !== 'BinaryExpression') return false;
    const left = node.firstChild;
    const op = left?.nextSibling;
    const right = op?.nextSibling;
    if (!left || !op || !right || right.nextSibling || this.src(op) !== '==') return false;
    const isName = (n: SyntaxNode): boolean => n.name === 'VariableName' && this.src(n) === '__name__';
    const isMain = (n: SyntaxNode): boolean => n.name === 'String' && /^(['"])__main__\1$/.test(this.src(n));
    return (isName(left) && isMain(right)) || (isMain(left) && isName(right));
  }

  private tryStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    const before = scope.state;
    let afterBody: Map<string, Values> | undefined;
    let normal: Map<string, Values> | undefined;
    const handlers: Map<string, Values>[] = [];
    let clause: 'try' | 'except' | 'else' | 'finally' = 'try';
    let bindAs = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      switch (child.name) {
        case 'try':
          continue;
        case 'except':
          clause = 'except';
          scope.state = join([before, afterBody ?? before]);
          continue;
        case 'else':
          clause = 'else';
          scope.state = new Map(afterBody ?? before);
          continue;
        case 'finally':
          clause = 'finally';
          scope.state = join([normal ?? afterBody ?? before, ...handlers]);
          continue;
        case 'as':
          bindAs = true;
          continue;
        case 'Body':
          if (clause === 'try') {
            scope.state = new Map(before);
            this.children(child, scope, main);
            afterBody = scope.state;
          } else {
            this.children(child, scope, main);
            if (clause === 'except') handlers.push(scope.state);
            else if (clause === 'else') normal = scope.state;
          }
          continue;
        default:
          if (bindAs) this.bindTarget(child, scope, OTHER_ONLY, main);
          else this.visit(child, scope, main);
          bindAs = false;
      }
    }
    if (clause !== 'finally') scope.state = join([normal ?? afterBody ?? before, ...handlers]);
  }

  private withStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    let bindAs = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'as') {
        bindAs = true;
      } else if (bindAs) {
        this.bindTarget(child, scope, OTHER_ONLY, main);
        bindAs = false;
      } else {
        this.visit(child, scope, main);
      }
    }
  }

  private matchStatement(node: SyntaxNode, scope: Scope, main: boolean): void {
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name !== 'MatchBody') {
        this.visit(child, scope, main);
        continue;
      }
      const before = scope.state;
      const outcomes = [before];
      for (let clause = child.firstChild; clause; clause = clause.nextSibling) {
        if (clause.name !== 'MatchClause') continue;
        scope.state = new Map(before);
        for (let part = clause.firstChild; part; part = part.nextSibling) {
          if (part.name.endsWith('Pattern')) this.bindPattern(part, scope);
          else this.visit(part, scope, main);
        }
        outcomes.push(scope.state);
      }
      scope.state = join(outcomes);
    }
  }

  /** Capture names in a match pattern (`case [fmin]`, `case {"k": v}`, `case P() as p`). */
  private bindPattern(node: SyntaxNode, scope: Scope): void {
    let bindAs = false;
    for (let child = node.firstChild; child; child = child.nextSibling) {
      if (child.name === 'as') bindAs = true;
      else if (child.name === 'VariableName' && (bindAs || node.name === 'CapturePattern')) {
        scope.bind(this.src(child), OTHER_ONLY);
      } else if (child.name.endsWith('Pattern')) this.bindPattern(child, scope);
    }
  }
}
