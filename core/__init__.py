"""GANscope core: data, models and the trainer. Plain Python + PyTorch; never imports streamlit."""
