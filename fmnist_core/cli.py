"""Command line: python -m fmnist_core {train,evaluate,predict,train-photo,models,activate,delete,feedback}."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fmnist_core.config import OPTIMIZERS, PRECISIONS, PRESETS, TTA_MODES, TrainConfig, preset, runs_dir, tta_mode

EXIT_OK, EXIT_ERROR, EXIT_SOME_FAILED = 0, 1, 2


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m fmnist_core", description="Fashion-MNIST workbench core")
    parser.add_argument("--data-dir", help="directory with the four Fashion-MNIST IDX .gz files")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and add it to the registry")
    train.add_argument("--preset", choices=sorted(PRESETS), default="standard")
    train.add_argument("--architecture")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--validation-split", type=float)
    train.add_argument("--augmentation", action=argparse.BooleanOptionalAction, default=None)
    train.add_argument("--alternating-flips", action=argparse.BooleanOptionalAction, default=None,
                       help="without augmentation: mirror each image in every other epoch")
    train.add_argument("--random-erasing", type=float, help="share of images with a random patch erased (0-1)")
    train.add_argument("--patience", type=int, help="early stopping patience in epochs (0 = off)")
    train.add_argument("--label-smoothing", type=float, help="share of each target spread over the ten classes (0-0.5)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="adam, or sgd (Nesterov momentum 0.9)")
    train.add_argument("--weight-decay", type=float,
                       help="decoupled weight decay: each step shrinks the kernels by learning rate x this (0-0.1)")
    train.add_argument("--weight-averaging", type=float, metavar="MOMENTUM",
                       help="end the main stage with a moving average of its weights, this its momentum per step "
                            "(e.g. 0.999; 0 = off)")
    train.add_argument("--finetune-epochs", type=int, help="epochs of the last, low-rate stage (0 = none)")
    train.add_argument("--finetune-learning-rate", type=float, help="the last stage's starting learning rate")
    train.add_argument("--shoe-pairs", type=float, help="in the last stage, the share of shoes shown as pairs (0-1)")
    train.add_argument("--init-from", metavar="MODEL_ID",
                       help="start from this registry model's weights and run only the last stage")
    train.add_argument("--precision", choices=PRECISIONS,
                       help="how training computes: auto (bfloat16 on CPUs with bfloat16 units, else float32), "
                            "or one of them; the saved model answers in float32")
    train.add_argument("--seed", type=int)
    train.add_argument("--subset", type=int, help="train on the first N images only")
    train.add_argument("--test-subset", type=int, help="evaluate on the first N test images only")
    train.add_argument("--run-dir", type=Path, help="where progress files go (default runs/<new id>)")
    train.add_argument("--config-json", help=argparse.SUPPRESS)  # used by the background job launcher
    train.add_argument("--resume", metavar="RUN_ID",
                       help="go on with a run whose process died, from its last epoch checkpoint, with its own "
                            "configuration (the other training options are ignored)")
    train.add_argument("--activate", action="store_true", help="make the new model the active one")
    train.add_argument("--json", action="store_true", help="print the final metrics as JSON")

    evaluate = sub.add_parser("evaluate", help="test-set metrics of a registry model")
    evaluate.add_argument("--model", help="model id (default: the active model)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--tta", choices=TTA_MODES, default=None,
                          help="test-time augmentation: off, the mirror image, or mirror and one-pixel shifts "
                               "(default: as recorded in the model's meta.json)")
    evaluate.add_argument("--record", action="store_true",
                          help="write these test metrics and the TTA choice into the model's meta.json")

    predict = sub.add_parser("predict", help="classify image files (photos: the photo model; drawings: the CNN)")
    predict.add_argument("files", nargs="+", type=Path)
    predict.add_argument("--model", help="CNN model id (default: the active model)")
    predict.add_argument("--use", choices=("auto", "photo", "cnn"), default="auto",
                         help="which model answers: auto (photos -> the photo model, small grey images -> the CNN), "
                              "or always one of them")
    predict.add_argument("--photo-model", metavar="ID", help="photo model id (default: the active photo model)")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--json", action="store_true")

    train_photo = sub.add_parser("train-photo", help="train the photo model's head on the cached real-photo features")
    train_photo.add_argument("--l2", type=float, help="weight decay (default 0.003)")
    train_photo.add_argument("--features", type=Path, help="feature file (default data/photo-features/...)")
    train_photo.add_argument("--run-dir", type=Path, help="where progress files go (the Train page's job uses it)")
    train_photo.add_argument("--activate", action="store_true", help="make the new head the active photo model")
    train_photo.add_argument("--json", action="store_true", help="print the metrics as JSON")
    train_photo.add_argument("--with-feedback", action="store_true",
                             help="train on the accepted corrections too (python -m fmnist_core feedback)")
    train_photo.add_argument("--feedback-weight", type=float,
                             help="how much more an accepted correction weighs than a pool photo (default 20)")

    feedback = sub.add_parser("feedback", help="the corrections people sent: add, list, review, export")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True)
    add = feedback_sub.add_parser("add", help="store photos with the label they should have had")
    add.add_argument("files", nargs="+", type=Path)
    add.add_argument("--label", required=True, help="one of the ten class names as the app writes them, or none")
    add.add_argument("--accept", action="store_true", help="accept them for training at once (admin)")
    add.add_argument("--json", action="store_true")
    listing = feedback_sub.add_parser("list", help="the stored corrections, newest first")
    listing.add_argument("--status", choices=("pending", "accepted", "rejected"))
    listing.add_argument("--json", action="store_true")
    for name, text in (("accept", "accept corrections for training (admin)"),
                       ("reject", "reject corrections (admin)"), ("delete", "delete corrections, photo and all (admin)")):
        review = feedback_sub.add_parser(name, help=text)
        review.add_argument("ids", nargs="+", type=int)
    export = feedback_sub.add_parser("export", help="a ZIP of the photos and a CSV of the corrections")
    export.add_argument("out", type=Path)
    for command in (add, *(feedback_sub.choices[name] for name in ("accept", "reject", "delete"))):
        command.add_argument("--admin-password", help="the admin password, when FMNIST_ADMIN_PASSWORD is set "
                                                      "(asked for on a terminal when left out)")

    models = sub.add_parser("models", help="list the registry (CNN models, then photo models)")
    models.add_argument("--json", action="store_true")

    activate = sub.add_parser("activate", help="make a model (CNN or photo) the active one")
    activate.add_argument("model_id")
    activate.add_argument("--force", action="store_true",
                          help="activate even a CNN that scores more than 1 point below the active one")

    delete = sub.add_parser("delete", help="delete a (non-active) model")
    delete.add_argument("model_id")
    return parser


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset with the command line's overrides applied."""
    if args.config_json:
        return TrainConfig.from_dict(json.loads(args.config_json))
    return preset(args.preset).replace(
        architecture=args.architecture, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, validation_split=args.validation_split, augmentation=args.augmentation,
        alternating_flips=args.alternating_flips, random_erasing=args.random_erasing,
        early_stopping_patience=args.patience, seed=args.seed, subset=args.subset,
        test_subset=args.test_subset, finetune_epochs=args.finetune_epochs,
        finetune_learning_rate=args.finetune_learning_rate, shoe_pairs=args.shoe_pairs, init_from=args.init_from,
        label_smoothing=args.label_smoothing, optimizer=args.optimizer, weight_decay=args.weight_decay,
        weight_averaging=args.weight_averaging, precision=args.precision)


def resumable_config(run_dir: Path) -> TrainConfig:
    """The configuration a run to resume was started with, or ValueError when it has no checkpoint."""
    from fmnist_core.checkpoints import read_checkpoint

    checkpoint = read_checkpoint(run_dir)
    if checkpoint is None:
        raise ValueError(f"run {run_dir.name} has no checkpoint to resume from (it finished, was cancelled, stopped "
                         f"before its first epoch ended, or {run_dir} does not exist)")
    return TrainConfig.from_dict(checkpoint.config).validate()


def cmd_train(args: argparse.Namespace) -> int:
    """Train in the foreground with a console progress bar."""
    from fmnist_core.data import load_dataset
    from fmnist_core.jobs import new_run_id
    from fmnist_core.train import train

    if args.resume:
        run_dir = args.run_dir or runs_dir() / args.resume
        config = resumable_config(run_dir)
    else:
        config = train_config_from_args(args).validate()
        run_dir = args.run_dir or runs_dir() / new_run_id()
    status = train(config, run_dir, dataset=load_dataset(args.data_dir), console=not args.json and sys.stdout.isatty(),
                   activate=args.activate, resume=bool(args.resume))
    result = {"model_id": status["model_id"], "test_accuracy": status["test_accuracy"],
              "test_loss": status["test_loss"], "train_seconds": status["train_seconds"],
              "train_cpu_seconds": status["train_cpu_seconds"], "run_dir": str(run_dir),
              "batch_size_used": status["batch_size"], "config": config.to_dict()}
    if args.json:
        _print_json(result)
    else:
        smaller = (f" (a short run: batches of {result['batch_size_used']} instead of {config.batch_size})"
                   if result["batch_size_used"] != config.batch_size else "")
        print(f"model {result['model_id']}: test accuracy {result['test_accuracy']:.4f} "
              f"in {result['train_seconds']:.0f} s of training{smaller}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a registry model on the full test set."""
    from fmnist_core.data import CLASS_NAMES, load_dataset
    from fmnist_core.evaluate import evaluate_test_set
    from fmnist_core.predict import Classifier

    classifier = Classifier.load(args.model)
    dataset = load_dataset(args.data_dir)
    tta = classifier.tta if args.tta is None else args.tta
    evaluation = evaluate_test_set(lambda images: classifier.probabilities(images, tta=tta), dataset)
    result = {"model": classifier.model_id, "tta": tta, "accuracy": evaluation.accuracy, "loss": evaluation.loss,
              "n": evaluation.n, "per_class_accuracy": dict(zip(CLASS_NAMES, evaluation.per_class_accuracy))}
    if args.record:
        from fmnist_core import registry

        meta = classifier.meta
        previous = {"accuracy": meta.get("test_metrics", {}).get("accuracy"), "tta": tta_mode(meta.get("tta"))}
        registry.update_meta(classifier.model_id, {"test_metrics": evaluation.summary(), "tta": tta,
                                                   "rescored": {"previous": previous, "tta": tta}})
    if args.json:
        _print_json(result)
    else:
        print(f"{classifier.model_id}: accuracy {evaluation.accuracy:.4f}, loss {evaluation.loss:.4f} "
              f"on {evaluation.n} test images")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify files; one bad file never stops the others; exit 2 if any failed."""
    from fmnist_core.answer import answer_many
    from fmnist_core.photo import PhotoModel, PhotoModelError
    from fmnist_core.predict import Classifier

    classifier = Classifier.load(args.model)
    photo_model, photo_problem = None, None
    if args.use != "cnn":
        try:
            photo_model = PhotoModel.load(args.photo_model)
        except PhotoModelError as error:
            if args.use == "photo" or args.photo_model:
                raise ValueError(str(error)) from None
            photo_problem = str(error)
    results = answer_many([str(path) if path.is_file() else path for path in args.files], classifier, photo_model,
                          args.use, args.top_k, photo_problem)
    records = []
    for path, result in zip(args.files, results):
        if isinstance(result, Exception):
            reason = str(result).splitlines()[0] if str(result) else type(result).__name__
            if not path.is_file():
                reason = f"no such file: {path}"
            records.append({"file": str(path), "error": reason})
        else:
            records.append({"file": str(path), **result.to_json()})
    if args.json:
        _print_json(records)
    else:
        for record in records:
            if "error" in record:
                print(f"{record['file']}: ERROR {record['error']}")
            else:
                doubt = f"  (unsure: {'; '.join(record['doubts'])})" if record["doubts"] else ""
                print(f"{record['file']}: {record['class_name']} {record['confidence']:.1%} "
                      f"[{record['model']}]{doubt}")
    return EXIT_SOME_FAILED if any("error" in record for record in records) else EXIT_OK


def cmd_train_photo(args: argparse.Namespace) -> int:
    """Train the photo head on cached features (seconds), register it, optionally activate it."""
    from fmnist_core.photo import save_photo_head
    from fmnist_core.photo_train import FEATURES_FILE, PhotoTrainConfig, train_photo_head

    overrides = {"l2": args.l2, "feedback_weight": args.feedback_weight}
    config = PhotoTrainConfig(with_feedback=args.with_feedback,
                              **{key: value for key, value in overrides.items() if value is not None})
    reporter = _photo_progress(args.run_dir, config) if args.run_dir else None
    try:
        head = train_photo_head(config, args.features or FEATURES_FILE,
                                progress=reporter.progress if reporter else None)
        model_id = save_photo_head(head, activate=args.activate)
    except Exception as error:
        if reporter:
            reporter.write(state="failed", message="failed", error=f"{type(error).__name__}: {error}")
        if isinstance(error, FileNotFoundError):
            raise ValueError(str(error)) from None
        raise
    test = head.meta["metrics"]["test"]
    if reporter:
        reporter.write(state="finished", message="finished", model_id=model_id, progress=1.0, eta_s=0,
                       test_accuracy=test["accuracy"], kind="photo")
    result = {"model_id": model_id, "activated": args.activate, "temperature": head.temperature,
              "sure_threshold": head.sure_threshold, "train_seconds": head.meta["train_seconds"],
              "test": {key: test[key] for key in ("accuracy", "sure_coverage", "sure_accuracy",
                                                   "not_of_the_ten_flagged")},
              "corrections": {key: value for key, value in (head.meta.get("corrections") or {}).items()
                              if key != "ids"} or None}
    if args.json:
        _print_json(result)
    else:
        print(f"photo model {model_id}: held-out real photos {test['accuracy']:.1%} right; sure answers "
              f"{test['sure_accuracy']:.1%} right on {test['sure_coverage']:.0%} of photos; hats, shorts and "
              f"skirts flagged {test['not_of_the_ten_flagged']:.0%} ({head.meta['train_seconds']:.0f} s)")
        if result["corrections"]:
            corrections = result["corrections"]
            right = corrections["cross_validated_accuracy"]
            print(f"  with {corrections['count']} accepted correction(s) (weight {corrections['weight']:g}), "
                  f"{'-' if right is None else f'{right:.0%}'} of them right when left out (cross-validated)")
    return EXIT_OK


def _photo_progress(run_dir: Path, config):
    """A RunReporter for a photo-head job: the Train page polls it like a CNN job's."""
    from fmnist_core.train import RunReporter

    class PhotoReporter(RunReporter):
        def progress(self, done: int, total: int, message: str) -> None:
            self.write(state="running", progress=round(done / total, 4), message=message, epoch=done, epochs=total)

    reporter = PhotoReporter(run_dir, config)
    reporter.write(kind="photo", message="loading the photo features")
    return reporter


def cmd_models(args: argparse.Namespace) -> int:
    """List registry models: the CNNs, then the photo models."""
    from fmnist_core import registry
    from fmnist_core.photo import active_photo_head_id, list_photo_heads

    active = registry.get_active_id()
    rows = [{"model_id": info.model_id, "active": info.model_id == active, "ok": info.ok, "problem": info.problem,
             "architecture": info.meta.get("architecture"), "accuracy": info.accuracy,
             "params": info.meta.get("params"), "train_seconds": info.meta.get("train_seconds"),
             "train_cpu_seconds": info.meta.get("train_cpu_seconds"), "created_at": info.meta.get("created_at")}
            for info in registry.list_models()]
    active_photo = active_photo_head_id()
    photo_rows = [{"model_id": info.model_id, "active": info.model_id == active_photo, "ok": info.ok,
                   "problem": info.problem, "architecture": "photo-head",
                   "accuracy": ((info.meta.get("metrics") or {}).get("test") or {}).get("accuracy"),
                   "kind": "photo", "created_at": info.meta.get("created_at")} for info in list_photo_heads()]
    if args.json:
        _print_json(rows + photo_rows)
    elif not rows:
        print("the registry is empty: python -m fmnist_core train --preset quick --activate")
    else:
        for row in rows:
            marker = "*" if row["active"] else " "
            accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "  -   "
            print(f"{marker} {row['model_id']:45s} {accuracy}  {row['architecture'] or '':14s}"
                  f"{'' if row['ok'] else '  BROKEN: ' + str(row['problem'])}")
        if photo_rows:
            print("photo models (accuracy on held-out real photos):")
        for row in photo_rows:
            marker = "*" if row["active"] else " "
            accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "  -   "
            print(f"{marker} {row['model_id']:45s} {accuracy}  photo-head"
                  f"{'' if row['ok'] else '  BROKEN: ' + str(row['problem'])}")
    return EXIT_OK


def cmd_activate(args: argparse.Namespace) -> int:
    """Set the active model (a photo model id activates the photo model); a much worse CNN needs --force."""
    from fmnist_core import registry
    from fmnist_core.photo import activate_photo_head, list_photo_heads

    if any(info.model_id == args.model_id for info in list_photo_heads()):
        activate_photo_head(args.model_id)
        print(f"active photo model: {args.model_id}")
        return EXIT_OK
    drop = registry.activation_drop(args.model_id)
    if drop is not None and not args.force:
        raise ValueError(f"{args.model_id} scores {drop.describe()}; add --force to activate it anyway")
    registry.set_active(args.model_id)
    print(f"active model: {args.model_id}" + (f" (warning: {drop.describe()})" if drop else ""))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a model."""
    from fmnist_core import registry

    registry.delete_model(args.model_id)
    print(f"deleted {args.model_id}")
    return EXIT_OK


def require_admin(args: argparse.Namespace, action: str) -> None:
    """ValueError unless this command may change things: no admin password set, or the right one given."""
    import getpass

    from fmnist_core.security import admin_policy, password_matches

    policy = admin_policy()
    if policy.mode == "open":
        return
    if policy.mode == "disabled":
        raise ValueError(f"{action} is turned off in this deployment (FMNIST_DISABLE_ADMIN)")
    given = getattr(args, "admin_password", None)
    if given is None and sys.stdin.isatty():
        given = getpass.getpass("admin password: ")
    if not password_matches(given, policy):
        raise ValueError(f"{action} needs the admin password (--admin-password; FMNIST_ADMIN_PASSWORD is set)")


def cmd_feedback(args: argparse.Namespace) -> int:
    """feedback add / list / accept / reject / delete / export."""
    from fmnist_core import feedback

    command = args.feedback_command
    if command == "add":
        return _feedback_add(args)
    if command == "list":
        rows = feedback.list_corrections(status=args.status)
        if args.json:
            _print_json(rows)
        elif not rows:
            print(f"no corrections in {feedback.db_path()}")
        for row in [] if args.json else rows:
            print(f"{row['id']:6d}  {row['status']:8s}  {row['label']:12s}  photo model said "
                  f"{row['photo_answer'] or '-'}  ({row['source']}, {row['created_at'][:19]})")
        return EXIT_OK
    if command in ("accept", "reject", "delete"):
        require_admin(args, f"{command.capitalize()}ing corrections")
        if command == "delete":
            changed = feedback.delete(args.ids)
        else:
            changed = feedback.set_status(args.ids, "accepted" if command == "accept" else "rejected")
        print(f"{command}{'d' if command.endswith('e') else 'ed'} {changed} correction(s)")
        return EXIT_OK
    data = feedback.export_zip()
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data) / 1e6:.1f} MB)")
    return EXIT_OK


def _feedback_add(args: argparse.Namespace) -> int:
    """Store each file as a correction; a bad file gets one line and the others go on."""
    from fmnist_core import feedback
    from fmnist_core.photo import PhotoModel, PhotoModelError
    from fmnist_core.preprocess import ImageError, decode

    label = feedback.label_name(args.label)
    if args.accept:
        require_admin(args, "Accepting corrections")
    try:
        model = PhotoModel.load()
    except PhotoModelError:
        model = None  # the corrections are still stored, without the photo model's answer
    records = []
    for path in args.files:
        try:
            data = path.read_bytes()
            answer = model.answer_photo(decode(data)) if model else None
            correction = feedback.Correction(label, "wrong", model.model_id if model else None,
                                             answer.name if answer else None, source="cli")
            records.append({"file": str(path), "id": feedback.add_with_model(data, correction, model, accept=args.accept)})
        except (OSError, ImageError) as error:
            records.append({"file": str(path), "error": str(error).splitlines()[0] if str(error) else type(error).__name__})
    if args.json:
        _print_json(records)
    else:
        for record in records:
            print(f"{record['file']}: " + (f"ERROR {record['error']}" if "error" in record else
                                           f"stored as correction {record['id']} ({label}"
                                           f"{', accepted' if args.accept else ', pending review'})"))
    return EXIT_SOME_FAILED if any("error" in record for record in records) else EXIT_OK


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "train-photo": cmd_train_photo,
            "models": cmd_models,
            "activate": cmd_activate, "delete": cmd_delete, "feedback": cmd_feedback}


def main(argv: list[str] | None = None) -> int:
    """Entry point; expected failures print one line on stderr instead of a traceback."""
    from fmnist_core.data import DatasetError
    from fmnist_core.feedback import FeedbackError
    from fmnist_core.registry import RegistryError
    from fmnist_core.train import TrainingCancelled

    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (DatasetError, RegistryError, FeedbackError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except TrainingCancelled:
        print("training cancelled; nothing was saved", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
