#pragma once
#include <string>
#include <vector>

namespace tlk::cli {

/// Runs the tlk command line (arguments without the program name); returns the exit status.
/// Errors in the user's input are thrown as tlk::Error and printed by main() as one line.
int run(const std::vector<std::string>& args);

/// `tlk selfcheck`: a small forward/backward through the engine, checked against finite differences.
int selfcheck(const std::vector<std::string>& args);

/// `tlk evaluate`: Dice per case and label of predicted label maps against references (task/evaluate.h).
int evaluate(const std::vector<std::string>& args);

/// `tlk preprocess`, `tlk train`, `tlk predict`: the segmentation pipeline (tools/tlk/<command>.cpp).
int preprocess(const std::vector<std::string>& args);
int train(const std::vector<std::string>& args);
int predict(const std::vector<std::string>& args);
/// `tlk demo`: the AMOS -> KiTS domain-adaptation experiment on generated phantoms.
int demo(const std::vector<std::string>& args);
/// `tlk phantom`: synthetic AMOS-like / KiTS-like CT as an nnUNet raw dataset.
int phantom(const std::vector<std::string>& args);

/// `tlk info FILE`: the header and values of a NIfTI file, or the contents of a checkpoint / HDF5 file.
int info(const std::vector<std::string>& args);

/// `tlk convert mnist|usps`: digit datasets (MNIST IDX, Kaggle usps.h5) -> TLK's classification HDF5.
int convert(const std::vector<std::string>& args);

}  // namespace tlk::cli
