"""The domain: playbook steps declared as data, and the engine that runs them once each."""
