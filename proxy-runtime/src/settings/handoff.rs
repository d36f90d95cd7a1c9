//! The typed handoff of a leaf from the loader to the leaf type's `Deserialize`.
//!
//! The loader reads every leaf once, with its [`SettingsLeaf`](super::schema::SettingsLeaf)
//! type, while it builds the settings tree. When serde then builds the typed settings, a
//! leaf type's `Deserialize` (through [`deserialize_leaf`](super::schema::deserialize_leaf))
//! asks for the newtype named [`LEAF_TOKEN`]; the loader's deserializer answers by putting
//! the value already read in a one-slot, thread-local handoff, which the leaf type takes
//! instead of reading the value again. The slot is filled and emptied within one call, on
//! one thread. Knows neither side: the schema and the loader both depend on it.

use std::any::Any;
use std::cell::RefCell;

/// The newtype name a leaf type's `Deserialize` asks for to take its value typed.
pub(crate) const LEAF_TOKEN: &str = "$proxy_runtime::leaf";

thread_local! {
    static HANDOFF: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` with `value` offered to a leaf type's `Deserialize`; whatever `f` did, the slot
/// is empty afterwards, so nothing outlives the call.
pub(crate) fn offer<R>(value: Box<dyn Any>, f: impl FnOnce() -> R) -> R {
    HANDOFF.with(|slot| *slot.borrow_mut() = Some(value));
    let result = f();
    HANDOFF.with(|slot| slot.borrow_mut().take());
    result
}

/// The value offered now, if it is a `T`.
pub(crate) fn take<T: 'static>() -> Option<T> {
    let value = HANDOFF.with(|slot| slot.borrow_mut().take())?;
    value.downcast::<T>().ok().map(|boxed| *boxed)
}

#[cfg(test)]
mod tests {
    use super::{offer, take};

    #[test]
    fn a_value_is_taken_once_by_its_type_and_never_outlives_the_offer() {
        assert_eq!(offer(Box::new(7u16), take::<u16>), Some(7));
        assert_eq!(
            offer(Box::new(7u16), || (take::<u16>(), take::<u16>())),
            (Some(7), None)
        );
        // Another type takes nothing (and the slot is emptied by the attempt).
        assert_eq!(offer(Box::new(7u16), take::<u32>), None);
        // What was not taken is gone once the offer ends.
        offer(Box::new(7u16), || ());
        assert_eq!(take::<u16>(), None);
    }
}
