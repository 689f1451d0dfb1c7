"""secret-origin's checks: offline rules for CI (`check`), live checks (`smoke`, `audit`) and the Vault
policies the jobs need (`policy`). Rules are pure functions over parsed inputs; I/O stays at the edges."""
