//! The async core of nomos-script. It never imports rhai.
