"""The ``transformers`` flavor: a Hugging Face ``PreTrainedModel``, with its tokenizer if given.

Pass the model, or ``{"model": model, "tokenizer": tokenizer}``. The folder is what
``save_pretrained`` writes (weights as safetensors only), so it also opens with
``from_pretrained`` directly. Loading uses the recorded Auto class (``AutoModel``,
``AutoModelForSequenceClassification``, ...) or else the model's own class, always with
``local_files_only=True``, and refuses a folder holding pickled weights (``pytorch_model.bin``
and the like) whatever their file names.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from modelreg.errors import InvalidInput, UnsafeModel
from modelreg.flavors import safety
from modelreg.flavors.classes import class_path, import_class, installed

_PRETRAINED = "transformers.modeling_utils.PreTrainedModel"

# Auto class -> the name of its mapping in transformers.models.auto.modeling_auto; the first
# whose mapping lists the model's class wins, so the more general AutoModel goes first.
_AUTO_CLASSES = {
    "AutoModel": "MODEL_MAPPING_NAMES",
    "AutoModelForCausalLM": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "AutoModelForMaskedLM": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "AutoModelForSeq2SeqLM": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "AutoModelForSequenceClassification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForTokenClassification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForQuestionAnswering": "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "AutoModelForMultipleChoice": "MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
    "AutoModelForPreTraining": "MODEL_FOR_PRETRAINING_MAPPING_NAMES",
    "AutoModelForImageClassification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
    "AutoModelForSpeechSeq2Seq": "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
    "AutoModelForCTC": "MODEL_FOR_CTC_MAPPING_NAMES",
    "AutoModelForAudioClassification": "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",
}


def _is_pretrained(obj: Any) -> bool:
    return _PRETRAINED in {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def _parts(obj: Any) -> tuple[Any, Any]:
    if isinstance(obj, dict):
        return obj["model"], obj.get("tokenizer")
    return obj, None


def _auto_class(model: Any) -> str | None:
    from transformers.models.auto import modeling_auto

    model_type = getattr(model.config, "model_type", None)
    cls_name = type(model).__name__
    for auto_name, mapping_name in _AUTO_CLASSES.items():
        names = getattr(modeling_auto, mapping_name, {}).get(model_type)
        if names == cls_name or (isinstance(names, (tuple, list)) and cls_name in names):
            return auto_name
    return None


def _pickled(directory: Path) -> dict[str, str]:
    """Files in ``directory`` that are pickles by content (``pytorch_model.bin`` and the like)."""
    found = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if reason := safety.unsafe_reason(path):
            found[path.relative_to(directory).as_posix()] = reason
    return found


class TransformersFlavor:
    name = "transformers"

    def detect(self, obj: Any) -> bool:
        if isinstance(obj, dict):
            return set(obj) <= {"model", "tokenizer"} and _is_pretrained(obj.get("model"))
        return _is_pretrained(obj)

    def save(self, obj: Any, directory: Path, *, input_example: Any = None) -> dict[str, Any]:
        model, tokenizer = _parts(obj)
        options: dict[str, Any] = {}
        if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
            options["safe_serialization"] = True  # transformers 4.x; 5.x writes only safetensors
        model.save_pretrained(directory, **options)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        if pickles := _pickled(directory):
            names = ", ".join(pickles)
            raise InvalidInput(f"save_pretrained wrote pickled files ({names}); refusing them")
        return {
            "auto_class": _auto_class(model),
            "class": class_path(type(model)),
            "tokenizer": tokenizer is not None,
        }

    def libraries(self, obj: Any) -> dict[str, str]:
        dists = ["transformers", "safetensors", "torch"]
        if _parts(obj)[1] is not None:
            dists.append("tokenizers")
        return installed(*dists)

    def load(self, directory: Path, metadata: dict[str, Any], *, trust: bool) -> Any:
        import transformers

        # Weights are read from safetensors only (use_safetensors=True) even when trusted.
        if not trust and (pickles := _pickled(directory)):
            names = ", ".join(f"{name} ({why})" for name, why in pickles.items())
            raise UnsafeModel(f"refusing to load pickled files: {names}", files=pickles)
        auto = metadata.get("auto_class")
        if auto:
            if auto not in _AUTO_CLASSES:
                raise InvalidInput(f"{auto!r} is not an Auto model class this flavor knows")
            cls = getattr(transformers, auto)
        else:
            cls = import_class(metadata.get("class"), within=("transformers",), trust=trust)
            if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
                raise InvalidInput(f"{metadata['class']} is not a PreTrainedModel class")
        model = cls.from_pretrained(directory, local_files_only=True, use_safetensors=True)
        model.eval()
        if not metadata.get("tokenizer"):
            return model
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        return {"model": model, "tokenizer": tokenizer}
