"""Study rex_compare at the Captum-default settings of the ReX paper's Table 1 (every
baseline but RISE "with default settings" through Captum; RISE with the authors' notebook
settings; see `rexjax.studies.configs.captum_defaults` for what cannot be reproduced):

    python experiments/run.py --config experiments/configs/rex_compare_captum.py
"""

from rexjax.studies import configs


def get_config():
    config = configs.captum_defaults(configs.base("rex_compare"))
    config.images = "third_party/images"
    config.out = "out/rex_compare_captum"
    return config
