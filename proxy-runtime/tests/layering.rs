//! The crate's layout holds: no circle among its files, and each room imports only the
//! rooms beneath it.
//!
//! Every file of `proxy-runtime/src` (but `bin/`, a crate of its own) is parsed with `syn`,
//! and every path that names something of this crate becomes an edge from the file that
//! writes it to the file that defines what it names: `use` items, paths in code, types and
//! attributes' arguments, and paths inside macro invocations (`tracing::debug!(..)`). A
//! name reached through a re-export (`crate::ProxyError`, `load::Origin`) is followed to
//! where it is defined. Not counted: a parent's `mod` and its re-exports of its own
//! children (`pub use child::Item`), unless the parent's own code uses the name.
//!
//! `cargo test -p proxy-runtime --test layering -- --nocapture` prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The rooms of the crate, lowest first: a file may import files of its own room and of
/// rooms listed before it, never after. Rooms on one line (the same rank) do not import
/// each other. A room is a top-level folder or file of `src/`.
const ROOMS: &[&[&str]] = &[
    &["redact"],
    &["settings"],
    &["model"],
    &["error"],
    &["transport"],
    &["route"],
    &["http_client", "ws"],
    &["injector"],
    &["proxied"],
    &["check"],
    &["__private", "bench", "fuzz"],
    &["lib"],
];

/// A module: its path from the crate root (`["transport", "proxy", "socks"]`).
type ModPath = Vec<String>;

/// One file of the crate.
struct SourceFile {
    /// Relative to `src/`.
    rel: String,
    module: ModPath,
    ast: syn::File,
}

/// What one module declares: the names of its items, its child modules, and its `use`
/// bindings (name -> the path it stands for).
#[derive(Default)]
struct ModInfo {
    /// The file the module lives in (an inline module lives in its file).
    file: usize,
    items: BTreeSet<String>,
    children: BTreeSet<String>,
    uses: BTreeMap<String, Vec<UseBinding>>,
    globs: Vec<Vec<String>>,
}

#[derive(Clone)]
struct UseBinding {
    path: Vec<String>,
}

/// A path written in a module, to resolve.
struct Reference {
    from_module: ModPath,
    path: Vec<String>,
    /// Written in a `use` that re-exports it (`pub use`, `pub(crate) use`).
    reexport: bool,
    /// Written in a `use` item (else in code).
    in_use: bool,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("a readable source folder")
        .map(|e| e.expect("a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "bin") && dir == root {
                continue;
            }
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

fn load_files(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    rust_files(src, src, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel_path = path.strip_prefix(src).expect("under src");
            let text = fs::read_to_string(&path).expect("a readable file");
            let ast =
                syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", rel_path.display()));
            SourceFile {
                rel: rel_path.display().to_string(),
                module: module_of(rel_path),
                ast,
            }
        })
        .collect()
}

/// Every path a `use` tree binds, with the name it binds (`None` for a glob).
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                let bound = prefix.last().cloned();
                out.push((prefix.clone(), bound));
            } else {
                let mut path = prefix.clone();
                path.push(name.clone());
                out.push((path, Some(name)));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            let name = r.ident.to_string();
            if name != "self" {
                path.push(name);
            }
            out.push((path, Some(r.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, out);
            }
        }
    }
}

fn is_reexport(vis: &syn::Visibility) -> bool {
    !matches!(vis, syn::Visibility::Inherited)
}

/// Records the modules of a file: items, children and `use` bindings, inline modules
/// included.
fn declare(
    items: &[syn::Item],
    module: &ModPath,
    file: usize,
    mods: &mut BTreeMap<ModPath, ModInfo>,
) {
    let info = mods.entry(module.clone()).or_default();
    info.file = file;
    let mut inline = Vec::new();
    for item in items {
        let name = match item {
            syn::Item::Const(i) => Some(i.ident.to_string()),
            syn::Item::Enum(i) => Some(i.ident.to_string()),
            syn::Item::Fn(i) => Some(i.sig.ident.to_string()),
            syn::Item::Macro(i) => i.ident.as_ref().map(ToString::to_string),
            syn::Item::Static(i) => Some(i.ident.to_string()),
            syn::Item::Struct(i) => Some(i.ident.to_string()),
            syn::Item::Trait(i) => Some(i.ident.to_string()),
            syn::Item::TraitAlias(i) => Some(i.ident.to_string()),
            syn::Item::Type(i) => Some(i.ident.to_string()),
            syn::Item::Union(i) => Some(i.ident.to_string()),
            syn::Item::Mod(m) => {
                info.children.insert(m.ident.to_string());
                if let Some((_, content)) = &m.content {
                    let mut child = module.clone();
                    child.push(m.ident.to_string());
                    inline.push((child, content.clone()));
                }
                None
            }
            syn::Item::Use(u) => {
                let mut flat = Vec::new();
                flatten_use(&u.tree, &mut Vec::new(), &mut flat);
                for (path, bound) in flat {
                    match bound {
                        Some(name) => info.uses.entry(name).or_default().push(UseBinding { path }),
                        None => info.globs.push(path),
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(name) = name {
            info.items.insert(name);
        }
    }
    for (child, content) in inline {
        declare(&content, &child, file, mods);
    }
}

/// Collects the paths a module writes: in `use` items, code and macro invocations.
struct Collector<'a> {
    module: ModPath,
    out: &'a mut Vec<Reference>,
    /// Single names used in code, per module (to tell whether a re-export is also used).
    names: &'a mut BTreeMap<ModPath, BTreeSet<String>>,
}

impl Collector<'_> {
    fn push(&mut self, path: Vec<String>, in_use: bool, reexport: bool) {
        self.out.push(Reference {
            from_module: self.module.clone(),
            path,
            reexport,
            in_use,
        });
    }

    /// Paths in a macro's tokens: `a::b::c` sequences, and single names.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => {
                    self.tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(ident) => {
                    let mut path = vec![ident.to_string()];
                    let mut j = i + 1;
                    loop {
                        let colons = matches!(
                            (trees.get(j), trees.get(j + 1)),
                            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                                if a.as_char() == ':' && b.as_char() == ':'
                        );
                        match trees.get(j + 2) {
                            Some(TokenTree::Ident(next)) if colons => {
                                path.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    self.names
                        .entry(self.module.clone())
                        .or_default()
                        .insert(path[0].clone());
                    if path.len() > 1 {
                        self.push(path, false, false);
                    }
                    i = j;
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut flat = Vec::new();
        flatten_use(&u.tree, &mut Vec::new(), &mut flat);
        for (path, _) in flat {
            self.push(path, true, is_reexport(&u.vis));
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = segments.first() {
            self.names
                .entry(self.module.clone())
                .or_default()
                .insert(first.clone());
        }
        self.push(segments, false, false);
        syn::visit::visit_path(self, path);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(super)`: a scope, not a reference.
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // `#[doc = ".."]` and the like hold text, not paths; lists may hold paths
        // (`#[serde(with = ..)]` is text too, but `#[cfg_attr(..)]` holds attributes).
        if let syn::Meta::List(list) = &attr.meta {
            self.tokens(list.tokens.clone());
        }
    }
}

struct Crate {
    files: Vec<SourceFile>,
    mods: BTreeMap<ModPath, ModInfo>,
}

/// Where a path resolves: the file that defines what it names, and whether it went
/// through a re-export of the crate root.
struct Resolved {
    file: usize,
    via_root_reexport: bool,
}

impl Crate {
    fn is_module(&self, path: &ModPath) -> bool {
        self.mods.contains_key(path)
    }

    /// The module a path starts from, and the rest of the path; `None` for paths that do
    /// not name this crate (other crates, local names, generics).
    fn start<'p>(&self, from: &ModPath, path: &'p [String]) -> Option<(ModPath, &'p [String])> {
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" | "proxy_runtime" => Some((Vec::new(), rest)),
            "self" => Some((from.clone(), rest)),
            "super" => {
                let mut module = from.clone();
                module.pop()?;
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    module.pop()?;
                    rest = &rest[1..];
                }
                Some((module, rest))
            }
            _ => {
                let mut child = from.clone();
                child.push(first.clone());
                if self.is_module(&child) {
                    return Some((child, rest));
                }
                // A name imported into this module (or an enclosing inline one).
                None
            }
        }
    }

    fn resolve(&self, from: &ModPath, path: &[String], depth: usize) -> Option<Resolved> {
        // A single name is a local one (a variable may share a module's name), or one
        // imported, whose `use` is the reference.
        if depth > 32 || path.len() < 2 {
            return None;
        }
        let (mut module, rest) = self.start(from, path)?;
        let mut via_root_reexport = false;
        for (n, segment) in rest.iter().enumerate() {
            let mut child = module.clone();
            child.push(segment.clone());
            if self.is_module(&child) {
                module = child;
                continue;
            }
            let info = &self.mods[&module];
            if info.items.contains(segment) {
                break;
            }
            if let Some(bindings) = info.uses.get(segment) {
                // Follow the first binding that names this crate (a name may be bound in
                // the type and the value namespace by two imports).
                for binding in bindings {
                    let mut target = binding.path.clone();
                    target.extend(rest[n + 1..].iter().cloned());
                    if let Some(found) = self.resolve(&module, &target, depth + 1) {
                        return Some(Resolved {
                            file: found.file,
                            via_root_reexport: module.is_empty() || found.via_root_reexport,
                        });
                    }
                }
                return None;
            }
            for glob in &info.globs {
                let mut target = glob.clone();
                target.extend(rest[n..].iter().cloned());
                if let Some(found) = self.resolve(&module, &target, depth + 1) {
                    via_root_reexport |= module.is_empty();
                    return Some(Resolved {
                        file: found.file,
                        via_root_reexport: via_root_reexport || found.via_root_reexport,
                    });
                }
            }
            break;
        }
        Some(Resolved {
            file: self.mods[&module].file,
            via_root_reexport,
        })
    }
}

fn is_within(module: &ModPath, ancestor: &ModPath) -> bool {
    module.len() > ancestor.len() && module.starts_with(ancestor)
}

/// The file-level graph: (from, to) -> the paths that make the edge.
type Edges = BTreeMap<(usize, usize), BTreeSet<String>>;

struct Analysis {
    krate: Crate,
    edges: Edges,
    /// Paths that reach an item through the crate root's re-exports: `(file, path)`.
    through_root: Vec<(String, String)>,
}

fn analyse() -> Analysis {
    analyse_dir(&src_dir())
}

fn analyse_dir(src: &Path) -> Analysis {
    let files = load_files(src);
    let mut mods = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        declare(&file.ast.items, &file.module, i, &mut mods);
    }
    let mut references = Vec::new();
    let mut names = BTreeMap::new();
    for file in &files {
        let mut collector = Collector {
            module: file.module.clone(),
            out: &mut references,
            names: &mut names,
        };
        collector.visit_file(&file.ast);
    }
    let krate = Crate { files, mods };
    let mut edges = Edges::new();
    let mut through_root = Vec::new();
    for reference in &references {
        let Some(resolved) = krate.resolve(&reference.from_module, &reference.path, 0) else {
            continue;
        };
        let from = krate.mods[&reference.from_module].file;
        if from == resolved.file {
            continue;
        }
        let target_module = &krate.files[resolved.file].module;
        if reference.reexport && is_within(target_module, &reference.from_module) {
            // A parent re-exporting its own child: an edge only if it uses the name too.
            let bound = reference.path.last().cloned().unwrap_or_default();
            let used = names
                .get(&reference.from_module)
                .is_some_and(|n: &BTreeSet<String>| n.contains(&bound));
            if !used {
                continue;
            }
        }
        if resolved.via_root_reexport && !reference.from_module.is_empty() {
            through_root.push((krate.files[from].rel.clone(), reference.path.join("::")));
        }
        let how = if reference.in_use { "use " } else { "" };
        edges
            .entry((from, resolved.file))
            .or_default()
            .insert(format!("{how}{}", reference.path.join("::")));
    }
    Analysis {
        krate,
        edges,
        through_root,
    }
}

/// The strongly connected components of more than one file (Tarjan's algorithm).
fn circles(n: usize, edges: &Edges) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        next: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: &'a mut Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.counter);
            self.low[v] = self.counter;
            self.counter += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for w in self.next[v].clone() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                loop {
                    let w = self.stack.pop().expect("on the stack");
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.out.push(component);
                }
            }
        }
    }
    let mut next = vec![Vec::new(); n];
    for &(a, b) in edges.keys() {
        next[a].push(b);
    }
    let mut out = Vec::new();
    let mut t = Tarjan {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        out: &mut out,
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    out
}

/// The room of a file: its top-level folder or file name.
fn room(file: &SourceFile) -> String {
    file.module
        .first()
        .cloned()
        .unwrap_or_else(|| "lib".to_owned())
}

fn rank(room: &str) -> Option<usize> {
    ROOMS.iter().position(|line| line.contains(&room))
}

fn show(analysis: &Analysis, (from, to): (usize, usize)) -> String {
    let files = &analysis.krate.files;
    let how: Vec<&str> = analysis.edges[&(from, to)]
        .iter()
        .map(String::as_str)
        .collect();
    format!(
        "{} -> {}  ({})",
        files[from].rel,
        files[to].rel,
        how.join(", ")
    )
}

#[test]
fn no_circle_among_the_files_of_the_crate() {
    let analysis = analyse();
    for &edge in analysis.edges.keys() {
        println!("{}", show(&analysis, edge));
    }
    let found = circles(analysis.krate.files.len(), &analysis.edges);
    let mut report = String::new();
    for component in &found {
        report.push_str("a circle among:\n");
        for &(from, to) in analysis.edges.keys() {
            if component.contains(&from) && component.contains(&to) {
                report.push_str(&format!("  {}\n", show(&analysis, (from, to))));
            }
        }
    }
    assert!(found.is_empty(), "{report}");
}

#[test]
fn each_room_imports_only_the_rooms_beneath_it() {
    let analysis = analyse();
    let files = &analysis.krate.files;
    let mut wrong = Vec::new();
    for file in files {
        let r = room(file);
        assert!(
            rank(&r).is_some(),
            "{}: the room `{r}` is not in ROOMS: give it its place in the layers",
            file.rel
        );
    }
    for &(from, to) in analysis.edges.keys() {
        let (a, b) = (room(&files[from]), room(&files[to]));
        if a != b && rank(&b) >= rank(&a) {
            wrong.push(show(&analysis, (from, to)));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (ROOMS):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_crate_imports_from_defining_modules_not_the_root_s_reexports() {
    let analysis = analyse();
    let shown: Vec<String> = analysis
        .through_root
        .iter()
        .map(|(file, path)| format!("{file}: {path}"))
        .collect();
    assert!(
        shown.is_empty(),
        "paths through the crate root's re-exports:\n  {}",
        shown.join("\n  ")
    );
}

/// The edges of `analysis` as `from -> to` by relative file names.
fn edge_names(analysis: &Analysis) -> BTreeSet<(String, String)> {
    let files = &analysis.krate.files;
    analysis
        .edges
        .keys()
        .map(|&(from, to)| (files[from].rel.clone(), files[to].rel.clone()))
        .collect()
}

#[test]
fn the_analysis_sees_every_kind_of_reference() {
    // The checks above are only as good as the edges found: a crate written for the
    // purpose names other files in every way there is, and in ways that are no reference.
    let dir = std::env::temp_dir().join(format!("layering-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let files = [
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\nmod f;\nmod g;\nmod bin_like;\n\
             pub use a::inner::Deep;\npub use b::B;\n",
        ),
        ("a/mod.rs", "pub(crate) mod inner;\npub use inner::Deep;\n"),
        ("a/inner.rs", "pub struct Deep;\n"),
        // A `use` through the crate root's re-export reaches the defining file.
        ("b.rs", "use crate::Deep;\npub struct B(Deep);\n"),
        // A path in code, and one inside a macro invocation.
        (
            "c.rs",
            "pub fn c() { let _ = crate::b::B(crate::a::inner::Deep); }\n\
             pub fn m() { println!(\"{}\", crate::e::E); }\n",
        ),
        // A folder's re-export followed to the file; `pub(crate)` and a local named like
        // a module are no references.
        (
            "d.rs",
            "pub(crate) fn d() { let inner = 1; let _ = inner; let _ = crate::a::Deep; }\n",
        ),
        ("e.rs", "pub const E: u8 = 0;\n"),
        // A parent's re-export of its child is no edge unless the parent uses the name.
        (
            "f/mod.rs",
            "mod kid;\npub use kid::Kid;\npub fn f() -> Kid { Kid }\n",
        ),
        ("f/kid.rs", "pub struct Kid;\n"),
        ("g/mod.rs", "mod kid;\npub use kid::Unused;\n"),
        ("g/kid.rs", "pub struct Unused;\n"),
        // A `use super::` path, and an inline module's.
        (
            "bin_like.rs",
            "use super::e::E;\nmod tests { use crate::d::d; }\npub const X: u8 = E;\n",
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let analysis = analyse_dir(&dir);
    let edges = edge_names(&analysis);
    let want: BTreeSet<(String, String)> = [
        ("b.rs", "a/inner.rs"),
        ("c.rs", "b.rs"),
        ("c.rs", "a/inner.rs"),
        ("c.rs", "e.rs"),
        ("d.rs", "a/inner.rs"),
        ("f/mod.rs", "f/kid.rs"),
        ("bin_like.rs", "e.rs"),
        ("bin_like.rs", "d.rs"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(edges, want);
    let through_root: Vec<&str> = analysis
        .through_root
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(through_root, ["b.rs"]);
    // A circle is found.
    fs::write(dir.join("e.rs"), "pub const E: u8 = crate::c::C;\n").unwrap();
    fs::write(dir.join("c.rs"), "pub const C: u8 = crate::e::E;\n").unwrap();
    let analysis = analyse_dir(&dir);
    let found = circles(analysis.krate.files.len(), &analysis.edges);
    let names: Vec<Vec<&str>> = found
        .iter()
        .map(|c| {
            c.iter()
                .map(|&i| analysis.krate.files[i].rel.as_str())
                .collect()
        })
        .collect();
    assert_eq!(names, [vec!["c.rs", "e.rs"]]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_crate_s_own_edges_are_seen() {
    let analysis = analyse();
    let edges = edge_names(&analysis);
    let edge = |a: &str, b: &str| edges.contains(&(a.to_owned(), b.to_owned()));
    // The crate root's re-exports are not edges: lib.rs imports nothing.
    assert!(
        edges.iter().all(|(from, _)| from != "lib.rs"),
        "lib.rs has edges"
    );
    assert!(edge("settings/load/mod.rs", "settings/load/node.rs"));
    // Through `load`'s re-export, to the file that defines `Origin`.
    assert!(edge("check/mod.rs", "settings/load/origin.rs"));
}
