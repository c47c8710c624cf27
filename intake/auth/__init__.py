"""Sign-in and sign-out (step 1); registration, MFA and password reset follow."""
