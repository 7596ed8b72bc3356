"""From a recipe to a trained and evaluated model: recipe parsing, training data, run folders, model card, reproduce."""
