"""Plain ``nn.Module``s of kSS-GAN: StarGAN generator, PatchGAN critic, Siamese embedding net."""

from kssgan.models.critic import Critic
from kssgan.models.generator import Generator
from kssgan.models.siamese import SiameseNet

__all__ = ["Critic", "Generator", "SiameseNet"]
