//! Settings and keys.

use orchard_store::NewKey;

use crate::fixtures::{T0, owner};

dbtest!(a_setting_keeps_the_value_it_was_first_given, |store| {
    assert_eq!(store.setting_or_insert("url_signing_key", "first".into()).await.unwrap(), "first");
    assert_eq!(store.setting_or_insert("url_signing_key", "second".into()).await.unwrap(), "first");
    assert_eq!(store.setting_or_insert("other", "x".into()).await.unwrap(), "x");
});

dbtest!(concurrent_first_starts_agree_on_one_setting, |store| {
    let mut set = tokio::task::JoinSet::new();
    for idx in 0..8 {
        let store = store.clone();
        set.spawn(async move { store.setting_or_insert("url_signing_key", format!("value-{idx}")).await.unwrap() });
    }
    let values = set.join_all().await;
    assert!(values.iter().all(|it| *it == values[0]), "{values:?}");
});

dbtest!(a_key_is_found_by_its_hash_until_it_is_revoked, |store| {
    let alice = owner(store.as_ref(), "studio", "alice").await;
    let bob = owner(store.as_ref(), "studio", "bob").await;
    let rival = owner(store.as_ref(), "rival", "alice").await;
    assert_eq!(alice.workspace_id, bob.workspace_id, "one workspace per name");
    assert_ne!(alice.user_id, bob.user_id);
    assert_ne!(alice.workspace_id, rival.workspace_id);
    assert_ne!(alice.user_id, rival.user_id, "users are per workspace");

    assert_eq!(store.find_key("hash-of-studio-alice").await.unwrap(), Some(alice));
    assert_eq!(store.find_key("no such hash").await.unwrap(), None);

    // A second key of the same user belongs to the same user.
    let again = store
        .create_key(
            NewKey {
                workspace_name: "studio".into(),
                user_name: "alice".into(),
                key_hash: "second-hash".into(),
                prefix: "RJ-second".into(),
                admin: false,
            },
            T0 + 10,
        )
        .await
        .unwrap();
    assert_eq!((again.workspace_id, again.user_id), (alice.workspace_id, alice.user_id));
    assert_ne!(again.key_id, alice.key_id);

    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[0].prefix, "RJ-second", "newest first");
    assert!(keys.iter().all(|it| it.revoked_at.is_none()));

    assert!(store.revoke_key("RJ-studio-alice", T0 + 20).await.unwrap(), "revoked by prefix");
    assert_eq!(store.find_key("hash-of-studio-alice").await.unwrap(), None);
    assert!(!store.revoke_key("RJ-studio-alice", T0 + 30).await.unwrap(), "a revoked key is not revoked again");
    assert!(store.revoke_key(&bob.key_id.to_string(), T0 + 40).await.unwrap(), "revoked by id");
    assert_eq!(store.find_key("hash-of-studio-bob").await.unwrap(), None);
    assert!(!store.revoke_key("RJ-nobody", T0).await.unwrap());
    assert_eq!(store.find_key("second-hash").await.unwrap(), Some(again), "other keys still work");

    let keys = store.list_keys().await.unwrap();
    let revoked = keys.iter().find(|it| it.prefix == "RJ-studio-alice").unwrap();
    assert_eq!((revoked.workspace.as_str(), revoked.user.as_str()), ("studio", "alice"));
    assert_eq!(revoked.revoked_at, Some(T0 + 20));
});
