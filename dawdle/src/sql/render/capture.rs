//! Per captured table: its event tables, its trigger function and
//! triggers, and its row in the registry; down drops them.

use super::{current_slot, per_slot, ring, text_array};
use crate::sql::catalog::{BODY_QUOTE, CAPTURES_TABLE, EVENT_ID_SEQUENCE, SCHEMA};
use crate::sql::model::{CheckedTable, Record};
use crate::sql::quote::{ident, join, literal, push_fmt, qualified};
use crate::sql::Capture;
use crate::table::Action;

/// The transition tables the statement triggers see.
const OLD_ROWS: &str = "\"old_rows\"";
const NEW_ROWS: &str = "\"new_rows\"";

fn trigger_name(action: Action) -> String {
    format!("dawdle_{action}")
}

/// One table's event tables, trigger functions and triggers.
pub(super) fn up(sql: &mut String, table: &CheckedTable, capture: Capture) {
    push_fmt(
        sql,
        format_args!("-- {} ({})\n", table.comment, table.type_name),
    );
    prepare_function(sql, table);
    push_fmt(sql, format_args!("SELECT {}();\n", table.prepare));
    match capture {
        Capture::Triggers => {
            trigger_function(sql, table);
            if table.capture_replica {
                row_function(sql, table);
            }
            install_function(sql, table, Capture::Triggers);
        }
        // The event tables stay, for backfills' snapshot events.
        Capture::Wal => install_function(sql, table, Capture::Wal),
    }
}

/// The table's row in the registry: its reader, event tables, backfill
/// function and name, which the watcher and backfills look up.
pub(super) fn register(sql: &mut String, table: &CheckedTable, capture: Capture) {
    // Captured from the WAL: no trigger function (which is how the checks
    // of triggers pass the table over), and the columns the watcher reads.
    let (functions, wal) = match capture {
        Capture::Triggers => (
            text_array(&[table.function.clone(), table.row_function.clone()]),
            "NULL".to_owned(),
        ),
        Capture::Wal => (
            "NULL".to_owned(),
            format!("{}::jsonb", literal(&super::wal::spec(table))),
        ),
    };
    push_fmt(
        sql,
        format_args!(
            "INSERT INTO {captures} (\"name\", \"reader\", \"slots\", \"snapshot\", \"target\", \"type_name\",\n  \
             \"columns\", \"install\", \"prepare\", \"functions\", \"wal\", \"encode\")\n\
             VALUES ({key}, {reader}, {slots}, {snapshot}, {target}, {type_name},\n  \
             {columns}, {install}, {prepare}, {functions}, {wal}, {encode})\n\
             ON CONFLICT (\"name\") DO UPDATE SET \"reader\" = EXCLUDED.\"reader\", \"slots\" = EXCLUDED.\"slots\",\n  \
             \"snapshot\" = EXCLUDED.\"snapshot\", \"target\" = EXCLUDED.\"target\", \"type_name\" = EXCLUDED.\"type_name\",\n  \
             \"columns\" = EXCLUDED.\"columns\", \"install\" = EXCLUDED.\"install\", \"prepare\" = EXCLUDED.\"prepare\",\n  \
             \"functions\" = EXCLUDED.\"functions\", \"wal\" = EXCLUDED.\"wal\", \"encode\" = EXCLUDED.\"encode\";\n",
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            key = table.key_literal,
            reader = literal(&table.reader),
            snapshot = literal(&table.snapshot),
            target = literal(&table.target),
            slots = text_array(&table.slots),
            type_name = literal(table.type_name),
            columns = text_array(&table.column_names),
            install = literal(&table.install),
            prepare = literal(&table.prepare),
            encode = literal(&super::readers::encode_spec(table)),
        ),
    );
}

/// Drops the table's triggers, wherever up put them (the table, its
/// partitions and inheritance children), and its functions.
pub(super) fn down(sql: &mut String, table: &CheckedTable) {
    push_fmt(sql, format_args!("-- {}\n", table.comment));
    push_fmt(
        sql,
        format_args!(
            "\
DO {BODY_QUOTE}
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT g.tgrelid::regclass AS rel, g.tgname FROM pg_catalog.pg_trigger g
    WHERE g.tgparentid = 0 AND g.tgname LIKE 'dawdle\\_%'
      AND (g.tgrelid = to_regclass({target})
           OR g.tgrelid IN (SELECT h.tgrelid FROM pg_catalog.pg_trigger h
                            WHERE h.tgfoid = to_regprocedure({function})))
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
  END LOOP;
END
{BODY_QUOTE};
DROP FUNCTION IF EXISTS {install}(regclass);
DROP FUNCTION IF EXISTS {prepare}();
DROP FUNCTION IF EXISTS {row_function}();
DROP FUNCTION IF EXISTS {plain_function}();
",
            target = literal(&table.target),
            function = literal(&format!("{}()", table.function)),
            install = table.install,
            prepare = table.prepare,
            row_function = table.row_function,
            plain_function = table.function,
        ),
    );
}

/// Drops the table's event tables, waiting events included.
pub(super) fn down_tables(sql: &mut String, table: &CheckedTable) {
    for slot in &table.slots {
        push_fmt(sql, format_args!("DROP TABLE IF EXISTS {slot};\n"));
    }
    push_fmt(sql, format_args!("\n"));
}

/// The function making the event tables ready: the captured columns of the
/// old and the new row in their own types (or the override's), taken from
/// the table itself by a probe view, so that a re-run (or the DDL event
/// trigger, after an ALTER TABLE) converges them. `dawdle.ready` takes no
/// lock when nothing is to change.
fn prepare_function(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {prepare}() RETURNS void\nLANGUAGE plpgsql AS {BODY_QUOTE}\nBEGIN\n  \
             IF to_regclass({target_literal}) IS NULL THEN\n    \
             RAISE EXCEPTION 'table % does not exist, and {type_name} watches it', {target_literal}\n      \
             USING ERRCODE = 'undefined_table', HINT = 'Create it before applying dawdle''s up migration.';\n  \
             END IF;\n  \
             CREATE OR REPLACE TEMPORARY VIEW \"dawdle:probe\" AS\n  \
             SELECT 0::int8 AS \"id\", '0'::xid8 AS \"txid\", now() AS \"captured_at\", 0::int2 AS \"depth\", \
             ''::text AS \"action\"",
            prepare = table.prepare,
            target_literal = literal(&table.target),
            type_name = table.type_name.replace('\'', "''"),
        ),
    );
    for record in [Record::Old, Record::New] {
        for column in &table.columns {
            push_fmt(
                sql,
                format_args!(
                    ",\n    {} AS {}",
                    column.value.get(record),
                    column.stored.get(record)
                ),
            );
        }
    }
    push_fmt(
        sql,
        format_args!(
            "\n  FROM {target} o, {target} n WHERE false;\n",
            target = table.target
        ),
    );
    for ((slot, index), old_index) in table
        .slots
        .iter()
        .zip(&table.slot_indexes)
        .zip(&table.old_slot_indexes)
    {
        push_fmt(
            sql,
            format_args!(
                "  PERFORM {schema}.\"ready\"({slot}, 'pg_temp.\"dawdle:probe\"', {target}, {index}, {old_index});\n",
                schema = ident(SCHEMA),
                slot = literal(slot),
                target = literal(&table.target),
                index = literal(index),
                old_index = literal(old_index),
            ),
        );
    }
    push_fmt(
        sql,
        format_args!("  DROP VIEW pg_temp.\"dawdle:probe\";\nEND\n{BODY_QUOTE};\n"),
    );
}

/// Where a trigger function finds the changed rows.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// A statement trigger's transition tables, one row per changed row.
    Statement,
    /// A row trigger's `OLD` and `NEW`.
    Row,
}

/// The statement trigger function: one statement per captured action and
/// slot; then, where statements ran inside this one (an application's
/// trigger, a cascade) or beside it in one command (writable CTEs) and were
/// captured first, their events are given ids after this statement's.
fn trigger_function(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger\nLANGUAGE plpgsql AS {BODY_QUOTE}\n\
             DECLARE\n  slot int4 := {};\n  written int8;\n  ignored text;\nBEGIN\n",
            table.function,
            current_slot(),
        ),
    );
    actions(sql, table, Source::Statement);
    push_fmt(
        sql,
        format_args!("  GET DIAGNOSTICS written = ROW_COUNT;\n"),
    );
    // The mark is what the table's clock read when the statement began
    // (set by dawdle.enter, one trigger level up); the clock, the last id
    // this transaction's captures of the table took. They differ only if
    // the table had something captured while this statement ran (a
    // statement on another table, say a counter cache updated by a row
    // trigger, does not count: a row's events are all in one table). (Assignments, not PERFORM: a
    // simple expression costs a trigger call far less than a query.)
    push_fmt(
        sql,
        format_args!(
            "  IF TG_OP <> 'TRUNCATE' AND coalesce(current_setting('dawdle.c_{mark}', true), '') <>\n     \
             coalesce(current_setting('dawdle.m' || (pg_trigger_depth() - 1) || '_{mark}', true), '') THEN\n",
            mark = table.mark,
        ),
    );
    per_slot(sql, "    ", &table.slots, |sql, slot| {
        push_fmt(
            sql,
            format_args!(
                "      written := written + {schema}.\"reorder\"({slot}, \
                 current_setting('dawdle.m' || (pg_trigger_depth() - 1) || '_{mark}', true), pg_trigger_depth());\n",
                schema = ident(SCHEMA),
                slot = literal(slot),
                mark = table.mark,
            ),
        )
    });
    push_fmt(
        sql,
        format_args!(
            "  END IF;\n  IF written > 0 THEN\n    \
             ignored := set_config('dawdle.c_{mark}', currval({sequence})::text, true);\n  END IF;\n\
             {ring}  RETURN NULL;\nEND\n{BODY_QUOTE};\n",
            mark = table.mark,
            sequence = literal(&qualified(SCHEMA, EVENT_ID_SEQUENCE)),
            ring = ring("  "),
        ),
    );
}

/// The row trigger function of replicating sessions (the logical
/// replication apply worker fires row triggers only): the same events, one
/// row at a time, in the order the rows are applied.
fn row_function(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger\nLANGUAGE plpgsql AS {BODY_QUOTE}\n\
             DECLARE\n  slot int4 := {};\nBEGIN\n",
            table.row_function,
            current_slot(),
        ),
    );
    actions(sql, table, Source::Row);
    push_fmt(
        sql,
        format_args!("{}  RETURN NULL;\nEND\n{BODY_QUOTE};\n", ring("  ")),
    );
}

/// `IF TG_OP = ... END IF;` copying the rows of each captured action.
fn actions(sql: &mut String, table: &CheckedTable, source: Source) {
    let actions = table
        .actions
        .iter()
        .filter(|&&a| source == Source::Statement || a != Action::Truncate);
    for (i, &action) in actions.enumerate() {
        let keyword = if i == 0 { "IF" } else { "ELSIF" };
        push_fmt(
            sql,
            format_args!(
                "  {keyword} TG_OP = '{}' THEN\n",
                action.as_str().to_uppercase()
            ),
        );
        per_slot(sql, "    ", &table.slots, |sql, slot| {
            insert_events(sql, table, action, slot, source)
        });
    }
    sql.push_str("  END IF;\n");
}

/// The statement copying the changed rows of one action into one slot.
fn insert_events(
    sql: &mut String,
    table: &CheckedTable,
    action: Action,
    slot: &str,
    source: Source,
) {
    let records: &[Record] = match action {
        Action::Insert => &[Record::New],
        Action::Update => &[Record::Old, Record::New],
        Action::Delete => &[Record::Old],
        // Written by backfills and signals, never by a trigger.
        Action::Snapshot | Action::Signal => return,
        Action::Truncate => {
            // The TRUNCATE under way is done with: the tables below may
            // refuse one of their own again.
            push_fmt(
                sql,
                format_args!(
                    "      INSERT INTO {slot} (\"action\") VALUES ('truncate');\n      \
                     ignored := set_config('dawdle.t_{}', '', true);\n",
                    table.mark
                ),
            );
            return;
        }
    };
    push_fmt(sql, format_args!("      INSERT INTO {slot} (\"action\""));
    for &record in records {
        for column in &table.columns {
            push_fmt(sql, format_args!(", {}", column.stored.get(record)));
        }
    }
    push_fmt(sql, format_args!(")\n      SELECT '{}'", action.as_str()));
    for &record in records {
        for column in &table.columns {
            push_fmt(sql, format_args!(", {}", column.value.get(record)));
        }
    }
    let from = |record: Record| match (source, record) {
        (Source::Statement, Record::Old) => OLD_ROWS,
        (Source::Statement, Record::New) => NEW_ROWS,
        (Source::Row, Record::Old) => "(SELECT OLD.*)",
        (Source::Row, Record::New) => "(SELECT NEW.*)",
    };
    match (action, source) {
        (Action::Insert, _) => {
            push_fmt(sql, format_args!("\n      FROM {} n;\n", from(Record::New)))
        }
        (Action::Delete, _) => {
            push_fmt(sql, format_args!("\n      FROM {} o;\n", from(Record::Old)))
        }
        (_, Source::Row) => {
            push_fmt(
                sql,
                format_args!(
                    "\n      FROM {} o, {} n",
                    from(Record::Old),
                    from(Record::New)
                ),
            );
            unchanged_filter(sql, table);
            sql.push_str(";\n");
        }
        (_, Source::Statement) => {
            // A statement's old and new transition rows are stored in step,
            // one pair per updated row: their positions pair them, even
            // when the update changed the primary key.
            push_fmt(
                sql,
                format_args!(
                    "\n      FROM (SELECT row_number() OVER () AS \"dawdle:row\", * FROM {OLD_ROWS}) o\n      \
                     JOIN (SELECT row_number() OVER () AS \"dawdle:row\", * FROM {NEW_ROWS}) n \
                     ON o.\"dawdle:row\" = n.\"dawdle:row\""
                ),
            );
            unchanged_filter(sql, table);
            sql.push_str(";\n");
        }
    }
}

/// `WHERE` the captured columns changed, unless the type captures
/// unchanged rows too.
fn unchanged_filter(sql: &mut String, table: &CheckedTable) {
    if table.capture_unchanged {
        return;
    }
    // Binary images compare every type, json included, and treat two
    // NULLs as equal.
    let row = |record: Record| {
        let mut row = String::from("ROW(");
        join(&mut row, &table.columns, ", ", |out, c| {
            out.push_str(c.reference.get(record))
        });
        row.push(')');
        row
    };
    push_fmt(
        sql,
        format_args!(
            "\n      WHERE pg_catalog.record_image_ne({}, {})",
            row(Record::Old),
            row(Record::New)
        ),
    );
}

/// One trigger that up puts on the table, and on each of its partitions
/// and inheritance children.
struct Trigger {
    name: String,
    /// `pg_trigger.tgtype`: the bits of its level, timing and events.
    tgtype: u16,
    /// `pg_trigger.tgenabled`: `O` (ordinary sessions), `R` (replicating
    /// sessions only), `A` (always).
    enabled: char,
    function: String,
    old_table: bool,
    new_table: bool,
    /// Its arguments.
    arguments: Vec<String>,
    /// Which relations get it.
    scope: Scope,
    /// The `CREATE TRIGGER` statement, with `%1$s` for the relation.
    create: String,
}

/// Where up puts a trigger.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// The watched table and every table below it.
    All,
    /// The watched table only.
    Target,
    /// The tables below it (partitions, inheritance children) only.
    Below,
    /// Every one but partitions, which have the parent's row triggers as
    /// clones.
    NotPartitions,
}

/// `pg_trigger.tgtype`'s bits (PostgreSQL's `TRIGGER_TYPE_*`).
const ROW: u16 = 1;
const BEFORE: u16 = 2;

fn event_bit(action: Action) -> u16 {
    match action {
        Action::Insert => 4,
        Action::Delete => 8,
        Action::Update => 16,
        Action::Truncate => 32,
        Action::Snapshot | Action::Signal => 0,
    }
}

/// The triggers of the table: `dawdle_enter` before each statement (it
/// marks where the statement began, for the order of nested ones), one
/// statement trigger per captured action, and with `capture_replica` one
/// row trigger per row action for replicating sessions.
fn expected_triggers(table: &CheckedTable) -> Vec<Trigger> {
    let row_actions: Vec<Action> = table
        .actions
        .iter()
        .copied()
        .filter(|&a| a != Action::Truncate)
        .collect();
    let events = |actions: &[Action]| {
        actions
            .iter()
            .map(|a| a.as_str().to_uppercase())
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let mut triggers = Vec::new();
    if !row_actions.is_empty() {
        let function = qualified(SCHEMA, "enter");
        triggers.push(Trigger {
            name: "dawdle_enter".to_owned(),
            tgtype: BEFORE | row_actions.iter().map(|&a| event_bit(a)).sum::<u16>(),
            enabled: 'O',
            create: format!(
                "CREATE TRIGGER \"dawdle_enter\" BEFORE {} ON %1$s FOR EACH STATEMENT EXECUTE FUNCTION {function}('{}')",
                events(&row_actions),
                table.mark,
            ),
            arguments: vec![table.mark.clone()],
            scope: Scope::All,
            function,
            old_table: false,
            new_table: false,
        });
    }
    for &action in &table.actions {
        let (old_table, new_table) = match action {
            Action::Insert => (false, true),
            Action::Update => (true, true),
            Action::Delete => (true, false),
            _ => (false, false),
        };
        let mut transition = String::new();
        if old_table {
            push_fmt(&mut transition, format_args!(" OLD TABLE AS {OLD_ROWS}"));
        }
        if new_table {
            push_fmt(&mut transition, format_args!(" NEW TABLE AS {NEW_ROWS}"));
        }
        if !transition.is_empty() {
            transition.insert_str(0, " REFERENCING");
        }
        let name = trigger_name(action);
        triggers.push(Trigger {
            create: format!(
                "CREATE TRIGGER {} AFTER {} ON %1$s{transition} FOR EACH STATEMENT EXECUTE FUNCTION {}()",
                ident(&name),
                action.as_str().to_uppercase(),
                table.function,
            ),
            name,
            tgtype: event_bit(action),
            // A replicating session's TRUNCATE fires statement triggers.
            enabled: if action == Action::Truncate && table.capture_replica {
                'A'
            } else {
                'O'
            },
            function: table.function.clone(),
            old_table,
            new_table,
            arguments: Vec::new(),
            // A TRUNCATE of the table fires the truncate triggers of every
            // table below it too: only the table's own says so, and below
            // it one refuses a TRUNCATE of that table alone (see below).
            scope: if action == Action::Truncate {
                Scope::Target
            } else {
                Scope::All
            },
        });
    }
    if table.actions.contains(&Action::Truncate) {
        // The table's TRUNCATE is one event: the whole table emptied. Its
        // BEFORE trigger marks that one is under way, so that the tables
        // below it let it through; a TRUNCATE of one of them alone, which
        // no event could say, is refused.
        let enabled = if table.capture_replica { 'A' } else { 'O' };
        let function = qualified(SCHEMA, "truncating");
        triggers.push(Trigger {
            name: "dawdle_truncating".to_owned(),
            tgtype: BEFORE | event_bit(Action::Truncate),
            enabled,
            create: format!(
                "CREATE TRIGGER \"dawdle_truncating\" BEFORE TRUNCATE ON %1$s FOR EACH STATEMENT \
                 EXECUTE FUNCTION {function}('{}')",
                table.mark
            ),
            function,
            old_table: false,
            new_table: false,
            arguments: vec![table.mark.clone()],
            scope: Scope::Target,
        });
        let function = qualified(SCHEMA, "truncate_below");
        let target = table.comment.replace('\'', "''");
        triggers.push(Trigger {
            name: trigger_name(Action::Truncate),
            tgtype: BEFORE | event_bit(Action::Truncate),
            enabled,
            create: format!(
                "CREATE TRIGGER {} BEFORE TRUNCATE ON %1$s FOR EACH STATEMENT \
                 EXECUTE FUNCTION {function}('{}', '{target}')",
                ident(&trigger_name(Action::Truncate)),
                table.mark
            ),
            function,
            old_table: false,
            new_table: false,
            arguments: vec![table.mark.clone(), table.comment.clone()],
            scope: Scope::Below,
        });
    }
    if table.capture_replica {
        for &action in &row_actions {
            let name = format!("dawdle_replica_{action}");
            triggers.push(Trigger {
                create: format!(
                    "CREATE TRIGGER {} AFTER {} ON %1$s FOR EACH ROW EXECUTE FUNCTION {}()",
                    ident(&name),
                    action.as_str().to_uppercase(),
                    table.row_function,
                ),
                name,
                tgtype: ROW | event_bit(action),
                enabled: 'R',
                function: table.row_function.clone(),
                old_table: false,
                new_table: false,
                arguments: Vec::new(),
                scope: Scope::NotPartitions,
            });
        }
    }
    triggers
}

/// The function that puts the table's triggers on a relation (the table,
/// or one of its partitions or inheritance children), changing only what
/// differs: a relation whose triggers are in place is not locked. When
/// something differs, it locks the relation first, in the mode CREATE
/// TRIGGER takes, before any other change.
///
/// Captured from the WAL, the only triggers are those refusing a TRUNCATE
/// of a partition or child alone (for a type that captures TRUNCATE),
/// which the WAL would not carry as such: a partition's is not published
/// at all through its root, a child's would read as its parent's.
fn install_function(sql: &mut String, table: &CheckedTable, capture: Capture) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {install}(\"rel\" regclass) RETURNS void\n\
             LANGUAGE plpgsql AS {BODY_QUOTE}\n\
             DECLARE\n  \
             c pg_catalog.pg_class%ROWTYPE;\n  \
             t record;\n  \
             target boolean := \"rel\" = to_regclass({target_literal});\n\
             BEGIN\n  \
             SELECT * INTO c FROM pg_catalog.pg_class WHERE oid = \"rel\";\n",
            install = table.install,
            target_literal = literal(&table.target),
        ),
    );
    let mut triggers = expected_triggers(table);
    if capture == Capture::Wal {
        triggers.retain(|t| {
            t.name == "dawdle_truncating"
                || (t.name == trigger_name(Action::Truncate) && matches!(t.scope, Scope::Below))
        });
    }
    for trigger in &triggers {
        let condition = match trigger.scope {
            Scope::All => None,
            Scope::Target => Some("target"),
            Scope::Below => Some("NOT target"),
            Scope::NotPartitions => Some("NOT c.relispartition"),
        };
        let indent = match condition {
            Some(condition) => {
                push_fmt(sql, format_args!("  IF {condition} THEN\n"));
                "    "
            }
            None => "  ",
        };
        let name = literal(&trigger.name);
        // tgargs: each argument's bytes, then a zero byte.
        let arguments: String = trigger
            .arguments
            .iter()
            .flat_map(|a| a.bytes().chain([0]))
            .map(|b| format!("{b:02x}"))
            .collect();
        push_fmt(
            sql,
            format_args!(
                "{indent}IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid = \"rel\" AND g.tgname = {name}\n{indent}    \
                 AND g.tgtype = {tgtype} AND g.tgenabled = '{enabled}' AND g.tgfoid = {function}::regprocedure\n{indent}    \
                 AND (g.tgoldtable IS NOT NULL) = {old} AND (g.tgnewtable IS NOT NULL) = {new}\n{indent}    \
                 AND g.tgargs = decode('{arguments}', 'hex')) THEN\n{indent}  \
                 PERFORM {schema}.\"lock\"(\"rel\");\n{indent}  \
                 EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', {name}, \"rel\");\n{indent}  \
                 EXECUTE format({create}, \"rel\");\n",
                tgtype = trigger.tgtype,
                enabled = trigger.enabled,
                function = literal(&format!("{}()", trigger.function)),
                old = trigger.old_table,
                new = trigger.new_table,

                schema = ident(SCHEMA),
                create = literal(&trigger.create),
            ),
        );
        let mode = match trigger.enabled {
            'R' => Some("REPLICA"),
            'A' => Some("ALWAYS"),
            _ => None,
        };
        if let Some(mode) = mode {
            push_fmt(
                sql,
                format_args!(
                    "{indent}  EXECUTE format('ALTER TABLE %s ENABLE {mode} TRIGGER %I', \"rel\", {name});\n"
                ),
            );
        }
        push_fmt(sql, format_args!("{indent}END IF;\n"));
        if condition.is_some() {
            sql.push_str("  END IF;\n");
        }
    }
    let names = |target: bool| {
        let mut names: Vec<String> = triggers
            .iter()
            .filter(|t| match t.scope {
                Scope::Target => target,
                Scope::Below => !target,
                Scope::All | Scope::NotPartitions => true,
            })
            .map(|t| t.name.clone())
            .collect();
        if capture == Capture::Triggers {
            names.push("dawdle_guard".to_owned());
        }
        text_array(&names)
    };
    match capture {
        Capture::Triggers => push_fmt(
            sql,
            format_args!(
                "\
  -- A partitioned table guards its partitions: one made after up (when no
  -- event trigger installs the triggers on it) refuses writes rather than
  -- lose their events; a partition with the triggers has its copy off.
  IF c.relkind = 'p' AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid = \"rel\"
      AND g.tgname = 'dawdle_guard' AND g.tgfoid = {guard_literal}::regprocedure) THEN
    PERFORM {schema}.\"lock\"(\"rel\");
    EXECUTE format('DROP TRIGGER IF EXISTS \"dawdle_guard\" ON %s', \"rel\");
    EXECUTE format('CREATE TRIGGER \"dawdle_guard\" AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION {guard}()', \"rel\");
  END IF;
  IF c.relispartition AND EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid = \"rel\"
      AND g.tgname = 'dawdle_guard' AND g.tgenabled <> 'D') THEN
    PERFORM {schema}.\"lock\"(\"rel\");
    EXECUTE format('ALTER TABLE %s DISABLE TRIGGER \"dawdle_guard\"', \"rel\");
  END IF;
",
                guard_literal = literal(&format!("{}()", qualified(SCHEMA, "guard"))),
                guard = qualified(SCHEMA, "guard"),
                schema = ident(SCHEMA),
            ),
        ),
        Capture::Wal => super::wal::ready(sql, table),
    }
    push_fmt(
        sql,
        format_args!(
            "  -- Triggers of an earlier up that this one has not (its events changed,
  -- or its capture mode).
  FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g WHERE g.tgrelid = \"rel\" AND g.tgparentid = 0
             AND g.tgname LIKE 'dawdle\\_%'
             AND g.tgname <> ALL (CASE WHEN target THEN {target_names} ELSE {below_names} END) LOOP
    PERFORM {schema}.\"lock\"(\"rel\");
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, \"rel\");
  END LOOP;
END
{BODY_QUOTE};
",
            schema = ident(SCHEMA),
            target_names = names(true),
            below_names = names(false),
        ),
    );
}
