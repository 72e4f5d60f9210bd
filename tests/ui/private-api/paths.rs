// Machinery that must stay internal: every line is an error. If one of
// them compiles, an internal item became public API by accident.
use session_core::manager::now;
use session_core::state::FlushPlan;
use session_core::state::Stage;
use session_core::store::cleanup::run;
use session_core::store::open::SCHEMES;
use session_core::store::validate_prefix;
use session_rocket::store::memory::open_url;
use session_rocket::store::sql::Stmt;
use session_rocket::MEMORY_WARNING;

fn main() {}
