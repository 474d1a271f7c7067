% The lecture's Lab 6 network, exactly as MATLAB writes it (21,690 parameters).
% Train it with:  zoo train examples/lab6_layers.m --data digits --epochs 4 --val-every 30
layers = [
    imageInputLayer([28 28 1])          % 28x28 grayscale digits

    convolution2dLayer(3,8,'Padding','same')
    batchNormalizationLayer
    reluLayer

    maxPooling2dLayer(2,'Stride',2)

    convolution2dLayer(3,16, ...        a continuation: the rest of this line is ignored
        'Padding','same')
    batchNormalizationLayer
    reluLayer

    maxPooling2dLayer(2,'Stride',2)

    convolution2dLayer(3,32,'Padding','same')
    batchNormalizationLayer
    reluLayer

    fullyConnectedLayer(10)
    softmaxLayer
    classificationLayer];
