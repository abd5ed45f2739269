//! The one notice a reply gets for its blocks that are not offered to run. Models often
//! write several untagged fences (sample output, examples); a notice per block buried the
//! ones that matter, so the blocks are counted and grouped by reason.

/// `blocks`: each unoffered block's 1-based number in the reply and the reason it is not
/// offered. `None` when every block is offered.
pub(crate) fn unoffered_notice(blocks: &[(usize, &str)]) -> Option<String> {
    if blocks.is_empty() {
        return None;
    }
    // Groups keep the order of their first block.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for &(number, reason) in blocks {
        match groups.iter_mut().find(|(seen, _)| *seen == reason) {
            Some((_, numbers)) => numbers.push(number),
            None => groups.push((reason, vec![number])),
        }
    }
    let count = blocks.len();
    let subject = if count == 1 {
        "1 block of the reply is".to_string()
    } else {
        format!("{count} blocks of the reply are")
    };
    let reasons: Vec<String> = groups
        .iter()
        .map(|(reason, numbers)| with_numbers(reason, numbers))
        .collect();
    Some(format!(
        "{subject} not offered to run: {}",
        reasons.join("; ")
    ))
}

/// `no language tag (blocks 2, 4, 5): airlock runs only …`: the numbers follow the reason's
/// head, so the explanation is not repeated for each block.
fn with_numbers(reason: &str, numbers: &[usize]) -> String {
    let list: Vec<String> = numbers.iter().map(usize::to_string).collect();
    let noun = if numbers.len() == 1 {
        "block"
    } else {
        "blocks"
    };
    let numbers = format!("({noun} {})", list.join(", "));
    match reason.split_once(": ") {
        Some((head, rest)) => format!("{head} {numbers}: {rest}"),
        None => format!("{reason} {numbers}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: &str = "no language tag: airlock runs only blocks tagged with a language";

    #[test]
    fn blocks_with_one_reason_make_one_sentence_with_their_numbers() {
        let notice = unoffered_notice(&[(2, UNTAGGED), (4, UNTAGGED), (5, UNTAGGED)]);
        assert_eq!(
            notice.as_deref(),
            Some(
                "3 blocks of the reply are not offered to run: no language tag (blocks 2, 4, 5): airlock runs only blocks tagged with a language"
            )
        );
    }

    #[test]
    fn reasons_are_grouped_in_the_order_they_first_appear() {
        let notice = unoffered_notice(&[
            (1, "the block is empty"),
            (2, UNTAGGED),
            (3, "the block is empty"),
        ])
        .unwrap_or_default();
        assert_eq!(
            notice,
            "3 blocks of the reply are not offered to run: the block is empty (blocks 1, 3); no language tag (block 2): airlock runs only blocks tagged with a language"
        );
    }

    #[test]
    fn one_block_is_counted_in_the_singular_and_none_gives_no_notice() {
        assert_eq!(
            unoffered_notice(&[(7, "the block is empty")]).as_deref(),
            Some("1 block of the reply is not offered to run: the block is empty (block 7)")
        );
        assert_eq!(unoffered_notice(&[]), None);
    }
}
