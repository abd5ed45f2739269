use super::*;

fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

#[test]
fn two_actions_on_one_key_in_one_context_are_refused_by_name() {
    let clash = BTreeMap::from([("skip".to_string(), vec!["y".to_string()])]);
    let err = Keymap::new(&clash).unwrap_err().to_string();
    assert!(
        err.contains("y is bound to both approve and skip (Pending block)"),
        "{err}"
    );
    // The same key in two contexts is no conflict: the focused one decides.
    assert!(Keymap::new(&BTreeMap::new()).is_ok());
}

#[test]
fn every_default_key_parses_and_every_action_has_a_description() {
    for d in DEFAULTS {
        for text in d.keys {
            assert!(Key::parse(text).is_some(), "{text}");
        }
        assert!(!d.description.is_empty());
    }
}

#[test]
fn printable_global_keys_do_not_fire_in_the_composer() {
    let keymap = Keymap::default();
    let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(keymap.action(Context::Card, &q), Some(Action::Quit));
    assert_eq!(keymap.action(Context::Composer, &q), None);
    let y = key(KeyCode::Char('y'), KeyModifiers::NONE);
    assert_eq!(keymap.action(Context::Composer, &y), None);
    assert_eq!(keymap.action(Context::Card, &y), Some(Action::Approve));
    let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(
        keymap.action(Context::Composer, &ctrl_c),
        Some(Action::Cancel)
    );
    let big_e = key(KeyCode::Char('E'), KeyModifiers::SHIFT);
    assert_eq!(
        keymap.action(Context::Card, &big_e),
        Some(Action::EditExternal)
    );
}

#[test]
fn a_user_keymap_patches_only_what_it_names() {
    let overrides = BTreeMap::from([(
        "approve".to_string(),
        vec!["ctrl-y".to_string(), "enter".to_string()],
    )]);
    let keymap = Keymap::new(&overrides).expect("valid");
    let y = key(KeyCode::Char('y'), KeyModifiers::NONE);
    assert_eq!(keymap.action(Context::Card, &y), None);
    let ctrl_y = key(KeyCode::Char('y'), KeyModifiers::CONTROL);
    assert_eq!(keymap.action(Context::Card, &ctrl_y), Some(Action::Approve));
    let s = key(KeyCode::Char('s'), KeyModifiers::NONE);
    assert_eq!(keymap.action(Context::Card, &s), Some(Action::Skip));
    let err = Keymap::new(&BTreeMap::from([(
        "aprove".to_string(),
        vec!["y".to_string()],
    )]))
    .unwrap_err();
    assert!(err.to_string().contains("aprove"), "{err}");
    let err = Keymap::new(&BTreeMap::from([(
        "approve".to_string(),
        vec!["ctrl-".to_string()],
    )]))
    .unwrap_err();
    assert!(err.to_string().contains("not a key"), "{err}");
}
