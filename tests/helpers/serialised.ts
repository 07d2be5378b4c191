// What a dynamic provider's serialised text (its `__provider` input) loads when
// the engine's provider host evaluates it: installed packages only, through
// clients/http.ts's loadPackage (or a builtin's plain require) — never a module
// of this checkout by path, which the host could not find.

/** The packages the text loads, sorted; throws when it requires anything by a relative path. */
export function packagesLoadedBy(text: string): string[] {
    const relative = [...text.matchAll(/require\(["'](\.[^"']*)["']\)/g)].map((m) => m[1]);
    if (relative.length > 0) throw new Error(`the serialised provider requires modules by path: ${relative.join(", ")}`);
    const names = [
        ...[...text.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]),
        ...[...text.matchAll(/loadPackage\)?\(["']([^"']+)["']\)/g)].map((m) => m[1]),
    ];
    return [...new Set(names)].sort();
}
