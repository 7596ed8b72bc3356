"""The cloned-language testbed (the offline demo): a synthetic world, its tokenizer, pretraining, alignment arms."""
