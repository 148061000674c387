"""Payment providers: Stripe (card payments through Checkout)."""
