"""From the validated model to the compiled playbook both engines read."""
