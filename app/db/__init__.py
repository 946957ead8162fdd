"""Engine, sessions, the declarative base and the helpers every repository shares."""
