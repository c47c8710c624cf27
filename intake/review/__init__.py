"""Quality review of helpline calls: what lands on the supervisors' queue, and the rubric."""
