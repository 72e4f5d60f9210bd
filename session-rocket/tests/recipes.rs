//! What the recipes (`session_rocket::recipes`, compiled and run as
//! doctests) teach, beyond compiling: apps copy them as they are.

/// The recipes' source.
const RECIPES: &str = include_str!("../docs/recipes.md");

/// The code block of the recipe under `heading`, without the hidden
/// (`# `) lines a doctest runs but the rendered page does not show.
fn shown_code(heading: &str) -> Vec<&'static str> {
    let section = RECIPES
        .split_once(&format!("\n# {heading}\n"))
        .unwrap_or_else(|| panic!("no recipe `{heading}`"))
        .1;
    let block = section
        .split_once("\n```\n")
        .expect("the recipe has a code block")
        .1;
    let block = block.split_once("\n```").expect("the block ends").0;
    block
        .lines()
        .filter(|line| !line.starts_with("# ") && *line != "#")
        .collect()
}

/// The CSRF recipe compares the posted token with the session's in
/// constant time (`subtle`'s `ct_eq`), never with `==`, whose early exit
/// lets response timing reveal how much of a guessed token is right. Its
/// doctest checks that the right token is accepted and others refused.
#[test]
fn csrf_recipe_compares_tokens_in_constant_time() {
    let code = shown_code("A CSRF token kept in the session");
    assert!(
        code.iter().any(|line| line.contains(".ct_eq(")),
        "the recipe compares with `ct_eq`:\n{}",
        code.join("\n")
    );
    let equality: Vec<_> = code.iter().filter(|line| line.contains("==")).collect();
    assert!(
        equality.is_empty(),
        "the recipe compares tokens with `==`: {equality:?}"
    );
}
