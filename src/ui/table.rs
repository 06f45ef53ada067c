//! Aligned text tables for the plan, the run summary and `status`.

use std::fmt;

use crate::ui::style::Cell;

/// Writes an aligned table: a header row, then the rows (the last column unpadded),
/// each cell in its tone when stdout is a terminal ([`crate::ui::style`]).
pub(crate) fn write_table<const N: usize>(
    f: &mut fmt::Formatter<'_>,
    header: [&str; N],
    rows: &[[Cell; N]],
) -> fmt::Result {
    let colour = crate::ui::style::stdout();
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.text.chars().count());
        }
    }
    let width = |i: usize| (i + 1 < N).then_some(widths[i]);
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, name)| crate::ui::style::header(name, width(i), colour))
        .collect();
    writeln!(f, "{}", names.join("  ").trim_end())?;
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| crate::ui::style::cell(cell, width(i), colour))
            .collect();
        writeln!(f, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// `text` without the colour codes [`write_table`] adds when stdout is a terminal (as it
/// is when tests run in one), for snapshots that hold either way.
#[cfg(test)]
pub(crate) fn without_colour(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\x1b[") {
        plain.push_str(&rest[..start]);
        let code = &rest[start..];
        rest = code.find('m').map_or("", |end| &code[end + 1..]);
    }
    plain.push_str(rest);
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_codes_are_removed_and_nothing_else() {
        let painted = crate::ui::style::cell(
            &Cell::new("FAILED", crate::ui::style::Tone::Failed),
            Some(8),
            true,
        );
        assert_eq!(without_colour(&format!("a {painted}|é")), "a FAILED  |é");
    }
}
